"""Cross-site request forgery protection: the whole concept, framework-free.

* :mod:`coatcheck.csrf.protector`: the two layers' checks, :class:`CsrfProtector`
  (Fetch Metadata / Origin, the rules of Go's ``CrossOriginProtection``; then a token
  bound to the session, the login or a pre-session id).
* :mod:`coatcheck.csrf.rules`: :class:`CsrfRules`, the decision for one whole request
  (which layer applies, where the token comes from, which cookie to set), shared by
  every adapter.

The adapters (``coatcheck.adapters.csrf`` for ASGI, ``coatcheck.adapters.wsgi`` and
``coatcheck.adapters.flask``) only gather a request's inputs and answer refusals.
"""

from __future__ import annotations

from .protector import CsrfProtector, is_safe_method
from .rules import CsrfRequest, CsrfRules, TokenCheck, binding_of

__all__ = [
    "CsrfProtector",
    "CsrfRequest",
    "CsrfRules",
    "TokenCheck",
    "binding_of",
    "is_safe_method",
]
