"""``python -m coatcheck``: the same as the ``coatcheck`` command."""

from __future__ import annotations

from .cli.main import main

raise SystemExit(main())
