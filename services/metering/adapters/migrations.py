"""Apply the versioned `.sql` files of `clonedesk/metering/migrations/` to one database, idempotently.

Each file is `NNNN_name.sql`; statements are separated by `;` and name the database as `{database}`.
Applied versions are recorded in `<database>.schema_migrations`; a file already recorded is skipped, and
every statement is itself idempotent (IF NOT EXISTS), so a crash half-way through a file is re-run safely.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def validate_database(name: str) -> str:
    if not _DATABASE.fullmatch(name or ""):
        raise ValueError(f"invalid ClickHouse database name {name!r}")
    return name


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("clonedesk.metering.migrations").iterdir():
        match = _FILE.fullmatch(entry.name)
        if not match:
            continue
        text = "\n".join(line for line in entry.read_text().splitlines() if not line.strip().startswith("--"))
        statements = tuple(s.strip() for s in text.split(";") if s.strip())
        found.append(Migration(int(match.group(1)), match.group(2), statements))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version: {versions}")
    return found


def migrate(client, database: str, up_to: int | None = None) -> list[int]:
    """Bring `database` to the newest schema (or to version `up_to`); return the versions applied now."""
    validate_database(database)
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    recorded = client.query(f"SELECT version FROM {database}.schema_migrations").result_rows
    applied = {row[0] for row in recorded}
    done = []
    for migration in load_migrations():
        if migration.version in applied or (up_to is not None and migration.version > up_to):
            continue
        for statement in migration.statements:
            client.command(statement.replace("{database}", database))
        client.insert(f"{database}.schema_migrations", [[migration.version, migration.name]],
                      column_names=["version", "name"])
        log.info("applied migration", extra={"version": migration.version, "migration": migration.name})
        done.append(migration.version)
    return done
