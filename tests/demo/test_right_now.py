from __future__ import annotations

import pytest

from coatcheck.demo.right_now import store_survives_restart


@pytest.mark.parametrize(
    ("url", "said", "not_said"),
    [
        ("memory://", "ends when the server stops", "survive a restart"),
        ("sqlite:///coatcheck.db", "survive a restart of the server, with or without", "ends"),
        ("redis://127.0.0.1:6379/0", "live in the Redis server", "memory"),
        ("redis+cluster://h:7000/", "live in the Redis server", "memory"),
        ("postgresql://u:pw@h/db", "live in the PostgreSQL server", "pw"),
    ],
)
def test_restart_note_says_what_is_true_for_the_store(url: str, said: str, not_said: str) -> None:
    # The walkthrough: "with remember me ... it survives a server restart" was untrue on
    # memory:// and misleading on SQLite (a session without remember-me survives too).
    note = store_survives_restart(url, "session")
    assert said in note
    assert not_said not in note


def test_jwt_mode_tokens_outlive_any_store() -> None:
    assert "tokens stay valid across a restart" in store_survives_restart("memory://", "jwt")
