"""What the inspector found, as plain dataclasses that render to text or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "Finding",
    "Report",
    "Severity",
    "TimeInfo",
    "Verification",
    "VerificationStatus",
    "time_info",
]

Severity = Literal["error", "warning", "info"]
VerificationStatus = Literal["verified", "failed", "not_checked"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint result or remark: ``code`` is stable, ``message`` is for people."""

    severity: Severity
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class TimeInfo:
    """A time claim (``iat``, ``nbf``, ``exp``, signed-at ...) in human form relative to now."""

    name: str
    timestamp: float
    iso: str
    relative: str


@dataclass(frozen=True, slots=True)
class Verification:
    """Whether a secret or key checked out, and which one (``key`` names it, never shows it)."""

    status: VerificationStatus
    detail: str
    key: str | None = None
    error_code: str | None = None


@dataclass(slots=True)
class Report:
    """Everything the inspector can say about one value.

    ``kind`` is a stable identifier (``jws``, ``jwe``, ``authjs``, ``nextauth``,
    ``express-session``, ``flask-session``, ``starlette-session``, ``itsdangerous``,
    ``django-signed``, ``coatcheck-session``, ``coatcheck-refresh``, ``opaque``, ``cookie-header``,
    ``set-cookie``, ``plain``, ``unreadable``); ``title`` says it in words. ``children`` hold
    the cookies of a ``Cookie`` header or the value of a ``Set-Cookie`` line.
    """

    kind: str
    title: str
    readable: bool = True
    name: str | None = None
    length: int = 0
    header: dict[str, Any] | None = None
    payload: Any = None
    signature: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    times: list[TimeInfo] = field(default_factory=list)
    kid: str | None = None
    verification: Verification | None = None
    findings: list[Finding] = field(default_factory=list)
    children: list[Report] = field(default_factory=list)

    @property
    def verification_failed(self) -> bool:
        """True when a secret or key was given and this value (or a part) did not verify."""
        if self.verification is not None and self.verification.status == "failed":
            return True
        return any(child.verification_failed for child in self.children)

    @property
    def lint_failed(self) -> bool:
        """True when a Set-Cookie line (this one or a part) has an error-level finding."""
        if self.kind == "set-cookie" and any(f.severity == "error" for f in self.findings):
            return True
        return any(child.lint_failed for child in self.children)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as numbers and ISO strings)."""
        return {
            "kind": self.kind,
            "title": self.title,
            "readable": self.readable,
            "name": self.name,
            "length": self.length,
            "header": self.header,
            "payload": self.payload,
            "signature": self.signature,
            "fields": self.fields,
            "times": [
                {"name": t.name, "timestamp": t.timestamp, "iso": t.iso, "relative": t.relative}
                for t in self.times
            ],
            "kid": self.kid,
            "verification": None
            if self.verification is None
            else {
                "status": self.verification.status,
                "detail": self.verification.detail,
                "key": self.verification.key,
                "error_code": self.verification.error_code,
            },
            "findings": [
                {"severity": f.severity, "code": f.code, "message": f.message}
                for f in self.findings
            ],
            "children": [child.to_dict() for child in self.children],
        }


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    for unit, size in (("year", 365 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            # The nearest whole unit: a 15-minute token read a moment later is "in 15
            # minutes", not "in 14".
            count = max(1, round(seconds / size))
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = int(seconds)
    return f"{count} second{'s' if count != 1 else ''}"


def time_info(name: str, timestamp: float, now: float) -> TimeInfo | None:
    """A :class:`TimeInfo`, or None for a time no calendar can show. Never raises."""
    try:
        iso = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return None
    delta = timestamp - now
    if abs(delta) < 1:
        relative = "now"
    elif delta > 0:
        relative = f"in {_span(delta)}"
    else:
        relative = f"{_span(delta)} ago"
    return TimeInfo(name=name, timestamp=timestamp, iso=iso, relative=relative)
