"""Django adapter: coatcheck's sessions, tokens and hybrid mode in Django's conventions.

* :mod:`.conf`: ``settings.COATCHECK`` (the settings contract is in its docstring) and
  the process-wide runtime built from it;
* :mod:`.auth`: :func:`~.auth.authenticate` / :func:`~.auth.aauthenticate`, the
  framework-agnostic :class:`~coatcheck.auth.Authenticator` on a Django request;
* :mod:`.sessions`: the session engine (``SESSION_ENGINE``);
* :mod:`.middleware` and :mod:`.backends`: ``request.user`` from coatcheck;
* :mod:`.checks`: system checks; ``management/commands``: ``coatcheck_sessions``,
  ``coatcheck_keygen``.

Add ``"coatcheck.adapters.django"`` to ``INSTALLED_APPS`` for the checks and commands.
"""

from __future__ import annotations

__all__: list[str] = []
