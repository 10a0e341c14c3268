"""The outbound worker's own record of the replies a helpdesk has acknowledged, in
`<data>/outbound/delivered.sqlite`: real Zendesk and Intercom ignore `Idempotency-Key`, so a redelivered
`helpdesk.outbound` record (a crash before the offset commit, a rebalance) would be posted twice.

A reply is recorded only after the helpdesk acknowledged it; a crash between the two can still post it
twice, which no client-side record can rule out. SQLite, not a plain file: several outbound workers
share the data dir, and a rebalance hands a ticket's replies from one to another.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

FILE_NAME = "delivered.sqlite"


class DeliveredReplies:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: each record is its own durable transaction.
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an acknowledged post must survive a power cut
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS delivered ("
            " reply_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, ticket_id TEXT NOT NULL,"
            " delivered_at REAL NOT NULL)"
        )

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> "DeliveredReplies":
        return cls(Path(data_dir) / "outbound" / FILE_NAME)

    def __contains__(self, reply_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM delivered WHERE reply_id = ?", (reply_id,)).fetchone()
        return row is not None

    def record(self, reply_id: str, tenant_id: str, ticket_id: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO delivered (reply_id, tenant_id, ticket_id, delivered_at)"
            " VALUES (?, ?, ?, ?)",
            (reply_id, tenant_id, ticket_id, time.time()),
        )

    def close(self) -> None:
        self._db.close()
