"""Property tests for coatcheck.signing: round trips, and nothing forged is accepted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck.clock import FrozenClock
from coatcheck.errors import SignatureError
from coatcheck.signing import Signer

CLOCK = FrozenClock(1_800_000_000.0)
SIGNER = Signer(["o" * 32, "n" * 32], namespace="session", clock=CLOCK)
OTHER_NAMESPACE = Signer(["o" * 32, "n" * 32], namespace="sessions", clock=CLOCK)
OTHER_SECRET = Signer("x" * 32, namespace="session", clock=CLOCK)

B64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
payloads = st.one_of(st.binary(max_size=300), st.text(max_size=100))


def _refused(signer: Signer, value: str) -> None:
    with pytest.raises(SignatureError) as info:
        signer.unsign(value, max_age=3600)
    assert type(info.value) is SignatureError


@settings(max_examples=300)
@given(payloads)
def test_round_trip(data: bytes | str) -> None:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    assert SIGNER.unsign(SIGNER.sign(data), max_age=0) == raw


@settings(max_examples=300)
@given(payloads, st.data())
def test_flipping_any_character_is_refused(data: bytes | str, draw: st.DataObject) -> None:
    value = SIGNER.sign(data)
    index = draw.draw(st.integers(0, len(value) - 1))
    replacement = draw.draw(
        st.one_of(st.sampled_from(B64_CHARS), st.characters()).filter(lambda c: c != value[index])
    )
    _refused(SIGNER, value[:index] + replacement + value[index + 1 :])


@settings(max_examples=300)
@given(payloads, st.data())
def test_truncation_is_refused(data: bytes | str, draw: st.DataObject) -> None:
    value = SIGNER.sign(data)
    start = draw.draw(st.integers(0, len(value) - 1))
    end = draw.draw(st.integers(start, len(value)))
    if (start, end) != (0, len(value)):
        _refused(SIGNER, value[start:end])


@settings(max_examples=300)
@given(payloads, st.text(min_size=1, max_size=20), st.text(max_size=20))
def test_appending_or_prepending_is_refused(data: bytes | str, after: str, before: str) -> None:
    value = SIGNER.sign(data)
    _refused(SIGNER, before + value + after)
    _refused(SIGNER, after + value)


@settings(max_examples=300)
@given(payloads)
def test_other_namespace_or_secret_is_refused(data: bytes | str) -> None:
    value = SIGNER.sign(data)
    _refused(OTHER_NAMESPACE, value)
    _refused(OTHER_SECRET, value)
    _refused(SIGNER, OTHER_NAMESPACE.sign(data))
    _refused(SIGNER, OTHER_SECRET.sign(data))


@settings(max_examples=300)
@given(st.one_of(st.text(), st.text(alphabet=B64_CHARS, max_size=120)))
def test_arbitrary_text_raises_only_signature_error(value: str) -> None:
    _refused(SIGNER, value)
