from __future__ import annotations

import pytest

from coatcheck.demo.users import MAX_PASSWORD, PasswordTooLong, UserDirectory, UsernameTaken
from coatcheck.errors import InputError

from .conftest import FAST_HASHER


@pytest.fixture
def users() -> UserDirectory:
    return UserDirectory(":memory:", hasher=FAST_HASHER)


def test_register_and_check(users: UserDirectory) -> None:
    user = users.register(" Alice ", "correct horse", "Alice Example")
    assert (user.username, user.name) == ("alice", "Alice Example")
    assert users.check("ALICE", "correct horse") == user
    assert users.get(user.user_id) == user
    stored = users.connection.execute("SELECT password_hash FROM demo_users").fetchone()[0]
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored


def test_wrong_password_and_unknown_user_look_the_same(users: UserDirectory) -> None:
    users.register("alice", "correct horse", "Alice Example")
    assert users.check("alice", "wrong horse") is None
    assert users.check("bob", "correct horse") is None
    assert users.check(None, "x") is None


def test_a_password_over_the_maximum_is_refused_before_hashing(users: UserDirectory) -> None:
    # Issue 12, item 3: a clear 400 (code password_too_long), the same for any name.
    users.register("alice", "correct horse", "Alice Example")
    for name in ("alice", "bob"):
        with pytest.raises(PasswordTooLong) as caught:
            users.check(name, "x" * (MAX_PASSWORD + 1))
        assert caught.value.code == "password_too_long"
    with pytest.raises(PasswordTooLong):
        users.register("carol", "x" * (MAX_PASSWORD + 1), "Carol")
    assert users.check("alice", "x" * MAX_PASSWORD) is None  # at the bound: just wrong


def test_username_taken(users: UserDirectory) -> None:
    users.register("alice", "correct horse", "Alice Example")
    with pytest.raises(UsernameTaken):
        users.register("Alice", "another pass", "Other")


@pytest.mark.parametrize(
    ("username", "password", "name"),
    [
        ("", "correct horse", "A"),
        ("a", "correct horse", "A"),
        ("al ice", "correct horse", "A"),
        ("x" * 40, "correct horse", "A"),
        (7, "correct horse", "A"),
        ("alice", "short", "A"),
        ("alice", None, "A"),
        ("alice", "correct horse", ""),
        ("alice", "correct horse", "   "),
        ("alice", "correct horse", "a\x00b"),
        ("alice", "correct horse", "x" * 101),
        ("alice", "correct horse", ["list"]),
    ],
)
def test_bad_input_is_refused(
    users: UserDirectory, username: object, password: object, name: object
) -> None:
    with pytest.raises(InputError):
        users.register(username, password, name)
