from __future__ import annotations

import dataclasses

import pytest

from coatcheck.auth import Identity, Issued, Verified


def test_identity_is_frozen_and_names_itself() -> None:
    identity = Identity(user_id="u1", mode="session", claims={"name": "Alice Example"})
    assert identity.name == "Alice Example"
    with pytest.raises(dataclasses.FrozenInstanceError):
        identity.user_id = "u2"  # type: ignore[misc]


def test_identity_name_falls_back_to_user_id() -> None:
    assert Identity(user_id="u1", mode="jwt", claims={"name": 7}).name == "u1"
    assert Identity(user_id="u1", mode="jwt").name == "u1"


def test_issued_repr_hides_the_token() -> None:
    identity = Identity(user_id="u1", mode="jwt")
    issued = Issued(token="secret-token-value", expires_at=1.0, session_id=None, identity=identity)
    assert "secret-token-value" not in repr(issued)
    assert Verified(identity).reissued is None


def test_the_fast_constructors_make_what_the_dataclass_makes() -> None:
    from coatcheck.auth.identity import _make_identity, _make_verified

    names = [f.name for f in dataclasses.fields(Identity)]
    values = ["u1", "jwt", "sid", {"name": "Ada"}, 1.5, 2.5, False, "bearer"]
    fast = _make_identity(*values)  # type: ignore[arg-type]
    slow = Identity(**dict(zip(names, values, strict=True)))  # type: ignore[arg-type]
    assert fast == slow
    assert [getattr(fast, n) for n in names] == values
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.user_id = "u2"  # type: ignore[misc]
    issued = Issued(token="t", expires_at=1.0, session_id=None, identity=slow)
    assert _make_verified(fast) == Verified(slow)
    assert _make_verified(fast, issued) == Verified(slow, issued)
