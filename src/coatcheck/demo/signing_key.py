"""The demo's JWT signing key: made once, kept in the demo's SQLite file.

Tokens must survive a server restart, so the key is stored next to the users
(table ``demo_keys``). A real deployment would load it from a secret store; the
demo keeps a private key in a local file only because it is a demo.
"""

from __future__ import annotations

import json
import sqlite3
import time

from ..tokens import Key, KeyRing

__all__ = ["load_signing_keys"]


def load_signing_keys(conn: sqlite3.Connection, alg: str) -> KeyRing:
    """The stored keys for ``alg`` (oldest first), generating the first one if none.

    Raises ConfigurationError for an unknown algorithm or a corrupt stored key.
    """
    # IMMEDIATE: two demo processes starting together agree on one key.
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute("SELECT jwk FROM demo_keys ORDER BY created_at").fetchall()
        keys = [Key.from_jwk(json.loads(row[0])) for row in rows]
        keys = [key for key in keys if key.alg == alg]
        if not keys:
            key = Key.generate(alg)
            conn.execute(
                "INSERT INTO demo_keys (kid, jwk, created_at) VALUES (?, ?, ?)",
                (key.kid, json.dumps(key.to_jwk(private=True)), time.time()),
            )
            keys = [key]
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return KeyRing(keys)
