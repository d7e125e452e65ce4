"""Decoding shared by the serialising stores: fast JSON.

A store reads its row on every request (revocation stays immediate) and decodes it
every time. Decoded records used to be cached per session id; with more users than
cache entries that cache cost more on its misses than it saved on its hits, so it is
gone (issue 18; ``bench/results`` shows both regimes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["loads"]

_fast: Callable[[str | bytes], Any] | None
try:
    from orjson import loads as _fast
except ImportError:  # pragma: no cover - orjson is optional
    _fast = None


def loads(text: str | bytes) -> Any:
    """``json.loads`` with orjson when installed (6x faster on a small record).

    Only text coatcheck wrote itself reaches this; where orjson refuses (integers
    beyond 64 bits), the standard library decides, so the result never depends on
    whether orjson is installed. Raises ValueError like ``json.loads``.
    """
    if _fast is not None:
        try:
            return _fast(text)
        except ValueError:
            pass
    return json.loads(text)
