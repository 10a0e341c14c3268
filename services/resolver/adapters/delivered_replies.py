"""The outbound worker's own record of its replies, in `<data>/outbound/delivered.sqlite`: real Zendesk
and Intercom ignore `Idempotency-Key`, so a redelivered `helpdesk.outbound` record (a crash before the
offset commit, a rebalance) would be posted twice.

A reply is marked `posting` before its first attempt and `delivered` once the helpdesk acknowledged it.
A reply found still `posting` was cut off between the two (a crash, a kill): whether the helpdesk got it
is unknown, so the worker asks the helpdesk before posting again (entrypoints/outbound.py). Each record
keeps a digest of the body, so that replies with the same words on one ticket can be told apart.
SQLite, not a plain file: several outbound workers share the data dir, and a rebalance hands a ticket's
replies from one to another.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

FILE_NAME = "delivered.sqlite"
POSTING = "posting"
DELIVERED = "delivered"


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
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(delivered)")}
        # Files written before replies had states hold delivered replies only.
        if "status" not in columns:
            self._db.execute(f"ALTER TABLE delivered ADD COLUMN status TEXT NOT NULL DEFAULT '{DELIVERED}'")
        if "body_sha256" not in columns:
            self._db.execute("ALTER TABLE delivered ADD COLUMN body_sha256 TEXT NOT NULL DEFAULT ''")

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> "DeliveredReplies":
        return cls(Path(data_dir) / "outbound" / FILE_NAME)

    def state(self, reply_id: str) -> str | None:
        """POSTING, DELIVERED, or None for a reply never tried."""
        row = self._db.execute("SELECT status FROM delivered WHERE reply_id = ?", (reply_id,)).fetchone()
        return row[0] if row else None

    def begin(self, reply_id: str, tenant_id: str, ticket_id: str, body_sha256: str) -> None:
        """Before the first attempt: from now on a lost outcome is known to be possible."""
        self._db.execute(
            "INSERT OR IGNORE INTO delivered (reply_id, tenant_id, ticket_id, delivered_at, status, body_sha256)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (reply_id, tenant_id, ticket_id, time.time(), POSTING, body_sha256),
        )

    def record(self, reply_id: str, tenant_id: str, ticket_id: str, body_sha256: str) -> None:
        """The helpdesk acknowledged the reply (or showed it)."""
        self._db.execute(
            "INSERT OR REPLACE INTO delivered (reply_id, tenant_id, ticket_id, delivered_at, status, body_sha256)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (reply_id, tenant_id, ticket_id, time.time(), DELIVERED, body_sha256),
        )

    def delivered_with_body(self, tenant_id: str, ticket_id: str, body_sha256: str) -> int:
        """How many replies with this body we know the helpdesk took on this ticket."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM delivered WHERE tenant_id = ? AND ticket_id = ? AND body_sha256 = ?"
            " AND status = ?",
            (tenant_id, ticket_id, body_sha256, DELIVERED),
        ).fetchone()
        return int(row[0])

    def close(self) -> None:
        self._db.close()
