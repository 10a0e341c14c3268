"""The ClickHouse store of metering, through clickhouse-connect: chDB in-process (`chdb:///path`) in the
embedded stack, a ClickHouse server URL in production; the same SQL either way.

Idempotence: raw rows are keyed by the id of the event they came from and lifecycle rows by resolution
id with a knowledge version, all in ReplacingMergeTree tables read with FINAL. A redelivered or
replayed event rewrites an identical row, so no figure moves.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import re
import tempfile
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import urlparse

from clonedesk.metering.adapters import settle_sql, staged_sql, wire
from clonedesk.metering.adapters.migrations import migrate, validate_database
from clonedesk.metering.domain.billing import Invoice, Month, invoice_from_figures
from clonedesk.metering.domain.counters import (ACTION, CHARGE, CSAT, LATENCY, STATE, Charge, Counts,
                                                StoredOutcome, StoredReply, charge_figures, exact_quantile)
from clonedesk.metering.domain.disputes import OPEN, Dispute
from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeKind, OutcomeRow, ReplyRow
from clonedesk.metering.domain.lifecycle import STATES, Lifecycle, State
from clonedesk.metering.domain.terms import Terms

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "clonedesk"

# domain/events.py ReplyRow holds REPLY_COLUMNS + EVIDENCE_COLUMNS, and OutcomeRow OUTCOME_COLUMNS, in this
# order (times in epoch ms, as DateTime64(3) takes them): the sink inserts its rows as they are.
REPLY_COLUMNS = ["resolution_id", "tenant_id", "ticket_id", "decision", "adapter_version", "created_at",
                 "latency_ms", "category", "confidence", "action_name", "action_status", "action_latency_ms"]
# Written with each resolution, read only for its evidence (never while settling: they are the big ones).
EVIDENCE_COLUMNS = ["conversation", "reply", "action", "action_answer", "escalation_reason"]
OUTCOME_COLUMNS = ["event_id", "resolution_id", "tenant_id", "ticket_id", "kind", "csat_score",
                   "occurred_at", "category"]
LIFECYCLE_COLUMNS = ["tenant_id", "resolution_id", "ticket_id", "state", "created_at", "state_at",
                     "billed_at", "reopened_at", "decided_by", "csat_score", "category", "latency_ms",
                     "decision", "version", "assumable_at"]

BUCKETS = {"hour": "toStartOfHour", "day": "toStartOfDay", "week": "toMonday", "month": "toStartOfMonth"}


def _period(bucket: str, column: str) -> str:
    """A period's start: the hour itself (a DateTime) for hourly buckets, else its day (a Date)."""
    return f"{bucket}({column})" if bucket == "toStartOfHour" else f"toDate({bucket}({column}))"


def _period_key(value) -> str:
    """ "2026-10-03" for a day, "2026-10-03T14:00" for an hour."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M")
    return value.isoformat()
DISPUTE_COLUMNS = ["tenant_id", "resolution_id", "reason", "status", "opened_at", "decided_at", "note",
                   "credit_month", "credit"]
# reopened_at as billing reads it: a resolution whose dispute was accepted is settled, and a reopen of it
# afterwards reverses nothing (domain/disputes.py; the core's billing.settled_by_disputes).
BILLING_REOPENED_AT = ("if(resolution_id IN (SELECT resolution_id FROM {db}.disputes FINAL"
                       " WHERE tenant_id = %(t)s AND status = 'accepted'), NULL, reopened_at)")


COUNTERS_MIGRATION = 8  # migrations/0008_usage_counters.sql

# For the sink's bulk inserts into tables whose every read collapses the rows itself (FINAL, sum()):
# ClickHouse need not collapse each inserted block as well, which costs more than writing it (summing
# the counters' block: about five times their write).
UNCOLLAPSED = {"optimize_on_insert": 0}  # (settle_sql.SETTLE sets the same for the lifecycles it writes)

COUNTER_COLUMNS = ["tenant_id", "kind", "period", "label", "category", "value", "n", "total", "total2"]
_COUNTER_KEY = "tenant_id, kind, period, label, category, value"
# The counters as the raw rows define them (domain/counters.py computes the same per resolution): what
# the migration backfills and what a repair compares against. `{where}` picks the rows (in the raw events'
# part, `{csat_where}` the outcomes' and `{action_where}` the replies').
_HOUR = "toDateTime(toStartOfHour({col}), 'UTC')"
# What the lifecycles add (state, latency, charge), and what the raw events add (CSAT, calls). The CSAT
# rows are filtered in a subquery: its `kind` alias would stand for the column in its own WHERE.
COUNTERS_FROM_LIFECYCLES = f"""
    SELECT tenant_id, '{STATE}' AS kind, {_HOUR.format(col='created_at')} AS period, toString(state) AS label,
           toString(category) AS category, toInt64(0) AS value, toInt64(count()) AS n,
           toInt64(sumIf(csat_score, csat_score > 0)) AS total, toInt64(countIf(csat_score > 0)) AS total2
    FROM {{db}}.resolution_lifecycles FINAL WHERE {{where}} GROUP BY tenant_id, period, label, category
    UNION ALL
    SELECT tenant_id, '{LATENCY}', {_HOUR.format(col='created_at')} AS period, '', '', toInt64(latency_ms) AS value,
           toInt64(count()), toInt64(0), toInt64(0)
    FROM {{db}}.resolution_lifecycles FINAL WHERE {{where}} GROUP BY tenant_id, period, value
    UNION ALL
    SELECT tenant_id, '{CHARGE}', {_HOUR.format(col='assumeNotNull(billed_at)')} AS period, '', '',
           toInt64(if(reopened_at IS NULL, 0, toYear(assumeNotNull(reopened_at)) * 100
                                                + toMonth(assumeNotNull(reopened_at)))) AS value,
           toInt64(count()), toInt64(0), toInt64(0)
    FROM {{db}}.resolution_lifecycles FINAL WHERE {{where}} AND billed_at IS NOT NULL
    GROUP BY tenant_id, period, value
"""
COUNTERS_FROM_EVENTS = f"""
    SELECT tenant_id, '{CSAT}' AS kind, {_HOUR.format(col='occurred_at')} AS period, '' AS label, '' AS category,
           toInt64(csat_score) AS value, toInt64(count()) AS n, toInt64(0) AS total, toInt64(0) AS total2
    FROM (SELECT tenant_id, occurred_at, csat_score FROM {{db}}.outcome_events FINAL
          WHERE {{csat_where}} AND kind = 'csat')
    GROUP BY tenant_id, period, value
    UNION ALL
    SELECT tenant_id, '{ACTION}', {_HOUR.format(col='created_at')} AS period, toString(action_status) AS label, '',
           toInt64(0), toInt64(count()), toInt64(sum(action_latency_ms)), toInt64(0)
    FROM {{db}}.resolution_events FINAL WHERE {{action_where}} AND action_status != ''
    GROUP BY tenant_id, period, label
"""
COUNTERS_FROM_ROWS = (COUNTERS_FROM_LIFECYCLES + "    UNION ALL\n"
                      + COUNTERS_FROM_EVENTS.replace("{csat_where}", "{where}").replace("{action_where}", "{where}"))


# A staged batch's raw events' counters over its resolutions, added after its inserts and taken away
# before them (store_staged): a CSAT can change only where the batch brings an outcome, a call only where
# it brings a reply.
_BATCH_EVENTS = (COUNTERS_FROM_EVENTS
                 .replace("{csat_where}", "(tenant_id, resolution_id) IN " + settle_sql.keys_of(replied=0))
                 .replace("{action_where}", "(tenant_id, resolution_id) IN " + settle_sql.keys_of(replied=1)))
_INTO_COUNTERS = f"INSERT INTO {{db}}.usage_counters ({', '.join(COUNTER_COLUMNS)}) "
_COUNT_BATCH_EVENTS = _INTO_COUNTERS + _BATCH_EVENTS
_UNCOUNT_BATCH_EVENTS = (_INTO_COUNTERS + "SELECT tenant_id, kind, period, label, category, value, -n, -total, -total2"
                         f" FROM ({_BATCH_EVENTS})")


def _id_chunks(wanted: dict[str, set[str]], size: int = 5000):
    """(tenants, a chunk of resolution ids) to read the wanted resolutions in: IN lists small enough for
    ClickHouse's query size limit."""
    tenants = sorted(wanted)
    ids = sorted(set().union(*wanted.values())) if wanted else []
    for start in range(0, len(ids), size):
        yield tenants, ids[start:start + size]


_LOW_CARDINALITY = re.compile(r"^LowCardinality\((.*)\)$")


class StagingFailed(RuntimeError):
    """ClickHouse could not decode a staged batch's records (store.stage_records)."""


class StagedRecordsLost(RuntimeError):
    """A batch's staged records were gone before they were stored (a ClickHouse server restarted: the stage
    is a Memory table): the batch fails, uncommitted, and Kafka delivers it again."""


@dataclass(frozen=True)
class StagedBatch:
    """A batch's records as staging insert bodies (adapters/wire.py): the sink process's stager id and the
    batch's sequence numbers, `first` to `last`."""

    stager: int
    first: int
    last: int
    resolutions: bytes
    outcomes: bytes

    @property
    def parameters(self) -> dict:
        return {"by": self.stager, "first": self.first, "last": self.last}


class StoreUnavailable(RuntimeError):
    """ClickHouse could not be opened (a server that does not answer, a chDB path another process holds)."""


def chdb_path_held(dsn: str) -> bool:
    """Whether another process holds this chDB data path (ClickHouse keeps `status` locked)."""
    status = Path(urlparse(dsn).path) / "status"
    try:
        with open(status, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def utc(moment: datetime | None) -> datetime | None:
    """ClickHouse hands back naive UTC datetimes; the core compares aware ones."""
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _ts(param: str) -> str:
    # Times travel as epoch milliseconds: exact, and free of the string format's time zone and precision.
    return f"fromUnixTimestamp64Milli(%({param})s, 'UTC')"


def _lifecycle(r: tuple) -> Lifecycle:
    return Lifecycle(tenant_id=r[0], resolution_id=r[1], ticket_id=r[2], state=State(r[3]),
                     created_at=utc(r[4]), state_at=utc(r[5]), billed_at=utc(r[6]), reopened_at=utc(r[7]),
                     decided_by=r[8],
                     csat_score=r[9], category=r[10], latency_ms=r[11], decision=r[12], version=r[13],
                     assumable_at=utc(r[14]))


@dataclass(frozen=True)
class UsagePeriod:
    period: str
    counts: dict[str, int]
    csat_average: float | None
    csat_count: int


class MeteringStore:
    def __init__(self, client, database: str = DEFAULT_DATABASE):
        self.client = client
        self.db = validate_database(database)
        # chDB is one in-process engine: the sink and the API take turns on it.
        self._lock = threading.RLock()
        self._backfilled = False
        self._insert_types: dict[str, dict[str, str]] = {}  # table -> column -> type as sent
        self._dsn: str | None = None  # set by connect(): what a second connection opens

    @classmethod
    def connect(cls, dsn: str, database: str = DEFAULT_DATABASE,
                migrate_schema: bool = True) -> "MeteringStore":
        import clickhouse_connect

        try:
            client = clickhouse_connect.get_client(dsn=dsn)
        except Exception as exc:  # noqa: BLE001 - every failure to connect reads the same to an operator
            lines = [line for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
            held = dsn.startswith("chdb:") and chdb_path_held(dsn)
            reason = "another process holds this chDB data path" if held else lines[0][:300]
            raise StoreUnavailable(f"cannot open ClickHouse at {dsn}: {reason}") from None
        store = cls(client, database)
        store._dsn = dsn
        if migrate_schema:
            store.migrate()
        return store

    def reopen(self) -> "MeteringStore":
        """This store on a connection of its own, for work beside this one's (the sink stages, stores and
        settles three batches side by side); the store itself where it was built from a client rather than
        a DSN (its calls then take turns)."""
        return self if self._dsn is None else MeteringStore.connect(self._dsn, self.db, migrate_schema=False)

    def migrate(self) -> list[int]:
        with self._lock:
            self._insert_types.clear()
            done = migrate(self.client, self.db)
            if COUNTERS_MIGRATION in done:  # backfill them now (a crash leaves it to the sink's start)
                self.repair_counters()
            return done

    def exclusive(self) -> threading.RLock:
        """Hold to read and then write with no other use of the store in between (this process)."""
        return self._lock

    def _query(self, sql: str, **parameters) -> list[tuple]:
        with self._lock:
            return self.client.query(sql.replace("{db}", self.db), parameters=parameters).result_rows

    def _insert(self, table: str, rows: Sequence[Sequence], column_names: Sequence[str],
                settings: dict | None = None) -> None:
        """Insert rows column by column: clickhouse-connect then skips its own per-row transposition
        (about a third of a bulk insert's client time)."""
        self._insert_columns(table, list(zip(*rows)), column_names, settings)

    def _insert_columns(self, table: str, columns: Sequence[Sequence], column_names: Sequence[str],
                        settings: dict | None = None) -> None:
        with self._lock:
            self.client.insert(f"{self.db}.{table}", columns, column_names=list(column_names),
                               column_type_names=self._types_to_send(table, column_names),
                               column_oriented=True, settings=settings)

    def _types_to_send(self, table: str, column_names: Sequence[str]) -> list[str]:
        """The columns' types as an insert sends them, read once per table: without them clickhouse-connect
        asks the server before every insert. A LowCardinality column is sent as its plain type (ClickHouse
        builds the dictionary; clickhouse-connect would, in Python)."""
        types = self._insert_types.get(table)
        if types is None or not all(name in types for name in column_names):
            types = {name: _LOW_CARDINALITY.sub(r"\1", type_name) for name, type_name in self._query(
                "SELECT name, type FROM system.columns WHERE database = %(db)s AND table = %(table)s",
                db=self.db, table=table)}
            self._insert_types[table] = types
        return [types[name] for name in column_names]

    def prepare_inserts(self) -> None:
        """Do before the sink's first batch what its inserts would otherwise do then: clickhouse-connect's
        lazy imports (it checks whether the data is a pandas or numpy one: importing pandas took 0.2-0.4 s
        of the first batch) and the column types of every table a batch writes."""
        from clickhouse_connect.driver import options

        getattr(options, "pd"), getattr(options, "np")  # resolving them is the point
        for table in ("resolution_events", "outcome_events", "usage_counters", "tenant_watermarks",
                      "settle_keys", "counter_repairs"):
            self._types_to_send(table, ())
        # The staged path's statements over a batch of nothing: the engine's first run of each (analysis,
        # the functions it loads) took a fifth of a second of the first batch.
        nothing = {"by": 0, "first": 1, "last": 0}
        self._query(staged_sql.REJECTED, **nothing)
        self._query(staged_sql.LATEST_BY_TENANT, **nothing)
        for statement in (staged_sql.INSERT_RESOLUTIONS, staged_sql.INSERT_OUTCOMES):
            self._command(statement, nothing, UNCOLLAPSED)

    def close(self) -> None:
        with self._lock:
            self.client.close()

    def ready(self) -> bool:
        """Whether ClickHouse answers a query, with these credentials, and metering's tables are there."""
        try:
            rows = self._query("SELECT count() FROM system.tables"
                               " WHERE database = %(db)s AND name = 'resolution_lifecycles'", db=self.db)
        except Exception:  # noqa: BLE001 - a server down, refusing us or a closed engine all mean "not ready"
            log.debug("ClickHouse did not answer the readiness query", exc_info=True)
            return False
        return bool(rows) and rows[0][0] == 1

    # -- writes ----------------------------------------------------------------------------------------

    def insert_replies(self, replies: Sequence[AiReply]) -> None:
        self.insert_reply_rows([ReplyRow.of(reply) for reply in replies])

    def insert_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        self.insert_outcome_rows([OutcomeRow.of(outcome) for outcome in outcomes])

    def insert_reply_rows(self, rows: Sequence[ReplyRow]) -> None:
        if rows:
            self._insert("resolution_events", rows, REPLY_COLUMNS + EVIDENCE_COLUMNS, UNCOLLAPSED)

    def insert_outcome_rows(self, rows: Sequence[OutcomeRow]) -> None:
        if rows:
            self._insert("outcome_events", rows, OUTCOME_COLUMNS, UNCOLLAPSED)

    def write_lifecycles(self, lifecycles: Sequence[Lifecycle]) -> None:
        if not lifecycles:
            return
        rows = [[x.tenant_id, x.resolution_id, x.ticket_id, x.state.value, x.created_at, x.state_at,
                 x.billed_at, x.reopened_at, x.decided_by, x.csat_score, x.category, x.latency_ms, x.decision,
                 x.version, x.assumable_at]
                for x in lifecycles]
        self._insert("resolution_lifecycles", rows, LIFECYCLE_COLUMNS)

    # -- what settling needs ---------------------------------------------------------------------------

    def advance_watermarks(self, latest: dict[str, datetime]) -> None:
        """Raise each tenant's watermark to the latest event time of a batch (never lowers it)."""
        if latest:
            tenants = sorted(latest)
            self._insert_columns("tenant_watermarks", [tenants, [latest[t] for t in tenants]],
                                 ["tenant_id", "watermark"])

    def watermarks(self, tenant_ids: Iterable[str]) -> dict[str, datetime]:
        """The latest event time seen for each tenant: metering's only notion of "now"."""
        rows = self._query("SELECT tenant_id, max(watermark) FROM {db}.tenant_watermarks"
                           " WHERE tenant_id IN %(ts)s GROUP BY tenant_id", ts=sorted(set(tenant_ids)))
        return {tenant: utc(moment) for tenant, moment in rows}

    def pending_due(self, watermarks: dict[str, datetime]) -> dict[str, set[str]]:
        """Per tenant, the pending resolutions whose quiet window its watermark has closed."""
        if not watermarks:
            return {}
        rows = self._query(
            "SELECT tenant_id, resolution_id, assumable_at FROM {db}.resolution_lifecycles FINAL"
            f" WHERE tenant_id IN %(ts)s AND state = 'pending' AND assumable_at <= {_ts('upto')}",
            ts=sorted(watermarks), upto=millis(max(watermarks.values())))
        due: dict[str, set[str]] = defaultdict(set)
        for tenant, resolution_id, assumable_at in rows:
            if utc(assumable_at) <= watermarks[tenant]:
                due[tenant].add(resolution_id)
        return due

    def histories(self, wanted: dict[str, set[str]]) -> tuple[dict[tuple[str, str], AiReply],
                                                              dict[tuple[str, str], list[Outcome]]]:
        """Every stored event of the wanted resolutions, by (tenant, resolution id); duplicates collapse."""
        replies: dict[tuple[str, str], AiReply] = {}
        outcomes: dict[tuple[str, str], dict[str, Outcome]] = defaultdict(dict)
        for tenants, chunk in _id_chunks(wanted):
            for row in self._query(
                    f"SELECT {', '.join(REPLY_COLUMNS)} FROM {{db}}.resolution_events"
                    " WHERE tenant_id IN %(ts)s AND resolution_id IN %(ids)s", ts=tenants, ids=chunk):
                key = (row[1], row[0])
                if row[0] not in wanted.get(row[1], ()):
                    continue
                if key in replies and replies[key].created_at <= utc(row[5]):
                    continue  # a re-published copy: the earliest reply time stands (as the table keeps)
                replies[key] = AiReply(resolution_id=row[0], tenant_id=row[1], ticket_id=row[2],
                                       decision=row[3], adapter_version=row[4], created_at=utc(row[5]),
                                       latency_ms=row[6], category=row[7], confidence=row[8],
                                       action_name=row[9], action_status=row[10], action_latency_ms=row[11])
            for row in self._query(
                    f"SELECT {', '.join(OUTCOME_COLUMNS)} FROM {{db}}.outcome_events"
                    " WHERE tenant_id IN %(ts)s AND resolution_id IN %(ids)s", ts=tenants, ids=chunk):
                if row[1] in wanted.get(row[2], ()):
                    outcomes[(row[2], row[1])][row[0]] = Outcome(
                        event_id=row[0], resolution_id=row[1], tenant_id=row[2], ticket_id=row[3],
                        kind=OutcomeKind(row[4]), csat_score=row[5], occurred_at=utc(row[6]), category=row[7])
        return replies, {key: list(by_id.values()) for key, by_id in outcomes.items()}

    def stored_lifecycles(self, wanted: dict[str, set[str]]) -> dict[tuple[str, str], Lifecycle]:
        """The lifecycles as stored now, by (tenant, resolution id), of the wanted resolutions."""
        found: dict[tuple[str, str], Lifecycle] = {}
        for tenants, chunk in _id_chunks(wanted):
            for row in self._query(
                    f"SELECT {', '.join(LIFECYCLE_COLUMNS)} FROM {{db}}.resolution_lifecycles FINAL"
                    " WHERE tenant_id IN %(ts)s AND resolution_id IN %(ids)s", ts=tenants, ids=chunk):
                if row[1] in wanted.get(row[0], ()):
                    found[(row[0], row[1])] = _lifecycle(row)
        return found

    # -- usage counters (domain/counters.py) -------------------------------------------------------------

    def begin_batch(self, tenant_ids: Iterable[str]) -> str:
        """Open a repair marker for the tenants a batch is about to write: its raw events, lifecycles and
        counters take several inserts that ClickHouse cannot make one, and a sink that dies among them
        leaves the marker open for the next start to repair (`repair_counters`). Returns the batch's id;
        `end_batch` closes the marker once the batch is settled."""
        batch_id = uuid.uuid4().hex
        with self._lock:
            self._write_markers([[tenant, batch_id, 0] for tenant in sorted(set(tenant_ids))])
        return batch_id

    def end_batch(self, batch_id: str, tenant_ids: Iterable[str]) -> None:
        """Close a batch's repair marker: it wrote everything."""
        with self._lock:
            self._write_markers([[tenant, batch_id, 1] for tenant in sorted(set(tenant_ids))])

    def write_settled(self, lifecycles: Sequence[Lifecycle], counts: dict[str, Counts]) -> None:
        """Write a batch's settled lifecycles and, per tenant, what they changed in the counters."""
        rows = [[tenant, key.kind, key.period, key.label, key.category, key.value, n, total, total2]
                for tenant, changed in counts.items() for key, (n, total, total2) in changed.items()]
        with self._lock:
            self.write_lifecycles(lifecycles)
            if rows:
                self._insert("usage_counters", rows, COUNTER_COLUMNS)

    # -- settling a batch in SQL (adapters/settle_sql.py) -------------------------------------------------

    def stage_batch(self, batch_id: str, touched: dict[str, set[str]], replied: dict[str, set[str]],
                    terms: dict[str, Terms]) -> tuple[dict, dict]:
        """Before the batch's events are stored: note its resolutions (`replied`: those it brings a reply
        of). Returns the copies stored so far of what the batch brings, as domain/counters.py
        raw_events_change reads them: replies by (tenant, resolution id), CSAT outcomes by (tenant,
        resolution id, event id)."""
        tenants, ids, flags = [], [], []
        for tenant, resolution_ids in touched.items():
            with_reply = replied.get(tenant, set())
            tenants += [tenant] * len(resolution_ids)
            ids += resolution_ids
            flags += [1 if rid in with_reply else 0 for rid in resolution_ids]
        params = {"b": batch_id, **settle_sql.terms_parameters(terms)}
        with self._lock:
            self._insert_columns("settle_keys", [[batch_id] * len(ids), tenants, ids, flags],
                                 ["batch_id", "tenant_id", "resolution_id", "replied"])
            stored_replies = {(t, rid): StoredReply(utc(at), status, latency) for t, rid, at, status, latency
                              in self._query(settle_sql.STORED_REPLIES, b=batch_id)}
            stored_csat = {(t, rid, eid): StoredOutcome(OutcomeKind.CSAT, score, utc(at))
                           for t, rid, eid, score, at in self._query(settle_sql.STORED_CSAT, b=batch_id)}
        return stored_replies, stored_csat

    def settle_staged(self, batch_id: str, terms: dict[str, Terms],
                      moved_by_events: dict[str, Counts]) -> dict[tuple[str, str], int]:
        """Once the batch's events are stored: `settle_batch`, then write what its raw events moved in the
        counters."""
        with self._lock:
            states = self.settle_batch(batch_id, terms)
            self._move_counters(moved_by_events)
        return states

    def settle_batch(self, batch_id: str, terms: dict[str, Terms]) -> dict[tuple[str, str], int]:
        """Settle a stored batch's resolutions, and the pending ones of its tenants whose quiet window the
        watermark has closed, from their stored events (the lifecycles' counters move in the same insert).
        Returns how many of them it moved into each state (a first lifecycle or a new state), by (tenant,
        state). One batch at a time, in order: each compares with the lifecycles the one before wrote."""
        params = {"b": batch_id, **settle_sql.terms_parameters(terms)}
        with self._lock:
            self._command(settle_sql.STAGE_DUE, params)
            self._command(settle_sql.SETTLE, params)
            rows = self._query(settle_sql.BATCH_STATES, b=batch_id)
        return {(tenant, state): int(n) for tenant, state, n in rows}

    # -- recording a batch staged as Kafka records (adapters/wire.py, adapters/staged_sql.py) ----------------

    def stage_records(self, batch: "StagedBatch") -> dict[int, str]:
        """Hand a batch's records to ClickHouse as they came off Kafka (ClickHouse decodes them) and judge
        them there; returns the rejected ones, seq -> why (adapters/codec.py's reasons), and leaves only the
        others staged. Raises StagingFailed, with nothing of the batch left staged, where ClickHouse cannot
        decode the records (a record that is no protobuf at all): the Python codec then judges them."""
        with self._lock:
            try:
                for table, body, schema, message in (
                        ("staged_resolutions", batch.resolutions, wire.RESOLUTION_SCHEMA, wire.RESOLUTION_MESSAGE),
                        ("staged_outcomes", batch.outcomes, wire.OUTCOME_SCHEMA, wire.OUTCOME_MESSAGE)):
                    if body:
                        self.client.raw_insert(f"{self.db}.{table}", None, body, fmt="Protobuf",
                                               settings=self._schema_settings(schema, message))
            except Exception as exc:  # noqa: BLE001 - the engine's parse errors have no type of their own
                self.drop_staged(batch)
                raise StagingFailed(str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__) from exc
            rejected = {int(seq): why for seq, why in self._query(staged_sql.REJECTED, **batch.parameters)}
            if rejected:  # what stays staged is then valid, and no later statement judges it again
                for statement in staged_sql.DROP_REJECTED:
                    self._command(statement, {**batch.parameters, "rejected": sorted(rejected)})
            return rejected

    def _schema_settings(self, schema: str, message: str) -> dict[str, str]:
        """The settings that name the schema a staging insert decodes with. A server is handed the text (it
        caches it under its own format_schema_path); chDB would cache it in the working directory, so the
        schema goes in a file under its data path and is named by that file's absolute path."""
        data_path = getattr(self.client, "path", None)  # chDB's client has one; a server's has none
        if not data_path:
            return wire.format_settings(schema, message)
        if data_path == ":memory:":
            data_path = tempfile.gettempdir()
        digest = hashlib.sha256(schema.encode()).hexdigest()[:16]
        path = Path(data_path) / "format_schemas" / f"clonedesk_{message}_{digest}.proto"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
            staging.write_text(schema)
            staging.replace(path)  # whole or not at all, for a second connection reading it
        return {"format_schema": f"{path}:{message}"}

    def staged_latest(self, batch: "StagedBatch") -> dict[str, int]:
        """Per tenant of the batch's valid records, its latest event time in epoch ms."""
        return {tenant: int(ms) for tenant, ms in self._query(staged_sql.LATEST_BY_TENANT, **batch.parameters)}

    def store_staged(self, batch_id: str, batch: "StagedBatch", expected: int) -> None:
        """Store a staged batch's valid records as rows (`expected` of them) and note its resolutions for
        `settle_batch`, as `stage_batch` and the inserts do for rows built in Python; the counters of raw
        events move by what the batch changed in them: their figures over its resolutions after the
        inserts, less before (the copies the tables keep decide, as domain/counters.py raw_events_change
        reckons them). Raises StagedRecordsLost where fewer are staged."""
        params = {"b": batch_id, **batch.parameters}
        with self._lock:
            self._command(staged_sql.STAGE_KEYS, params)
            self._command(_UNCOUNT_BATCH_EVENTS, params)
            self._command(staged_sql.INSERT_RESOLUTIONS, params, UNCOLLAPSED)
            self._command(staged_sql.INSERT_OUTCOMES, params, UNCOLLAPSED)
            self._require_staged(batch, expected)  # still all there once inserted: the inserts had them all
            self._command(_COUNT_BATCH_EVENTS, params, UNCOLLAPSED)
            self.drop_staged(batch)

    def _require_staged(self, batch: "StagedBatch", expected: int) -> None:
        staged = self._query(staged_sql.STAGED_COUNT, **batch.parameters)[0][0]
        if staged != expected:
            raise StagedRecordsLost(f"{expected} records were staged for the batch, {staged} are left")

    def drop_stager(self, stager: int) -> None:
        """Delete every record a sink process staged (it stops)."""
        with self._lock:
            for statement in staged_sql.DROP_STAGER:
                self._command(statement, {"by": stager})

    def drop_staged(self, batch: "StagedBatch") -> None:
        with self._lock:
            for statement in staged_sql.DROP_BATCH:
                self._command(statement, batch.parameters)

    def _move_counters(self, moved_by_events: dict[str, Counts]) -> None:
        rows = [[tenant, key.kind, key.period, key.label, key.category, key.value, n, total, total2]
                for tenant, changed in moved_by_events.items() for key, (n, total, total2) in changed.items()]
        if rows:
            self._insert("usage_counters", rows, COUNTER_COLUMNS, UNCOLLAPSED)

    def _command(self, sql: str, parameters: dict, settings: dict | None = None) -> None:
        self.client.command(sql.replace("{db}", self.db), parameters=parameters, settings=settings)

    def _write_markers(self, rows: list[list]) -> None:
        """Repair markers as (tenant or '*', batch id, closed)."""
        self._insert("counter_repairs", rows, ["tenant_id", "batch_id", "closed"])

    def open_repairs(self) -> list[tuple[str, str]]:
        """(tenant or '*', batch id) of every repair marker left open."""
        return [(t, b) for t, b in self._query(
            "SELECT tenant_id, batch_id FROM {db}.counter_repairs FINAL WHERE closed = 0 ORDER BY tenant_id, batch_id")]

    def counters_backfilled(self) -> bool:
        """False until the counters have been built from the rows stored before them (once true, it
        stays true for this store: only a migration or an operator's rebuild opens that marker)."""
        if not self._backfilled:
            self._backfilled = not any(tenant == "*" for tenant, _ in self.open_repairs())
        return self._backfilled

    def repair_counters(self) -> list[str]:
        """Bring the counters of every tenant with an open repair marker to what the raw rows say, then
        close the markers; the tenants repaired ('*' for all). Run by the sink before it consumes: it is
        the counters' only writer (with several sink replicas over one server, one repairs at a time)."""
        with self._lock:
            markers = self.open_repairs()
            if not markers:
                return []
            tenants = sorted({t for t, _ in markers})
            where = "1" if "*" in tenants else "tenant_id IN %(ts)s"
            self.client.command(
                f"INSERT INTO {self.db}.usage_counters ({', '.join(COUNTER_COLUMNS)}) "
                + self._counter_difference(where).replace("{db}", self.db), parameters={"ts": tenants})
            self._write_markers([[t, b, 1] for t, b in markers])
            log.info("usage counters repaired from the raw rows", extra={"tenants": tenants, "markers": len(markers)})
            return ["*"] if "*" in tenants else tenants

    def rebuild_counters(self) -> None:
        """Recount every tenant's counters from the raw rows (after rows were written around the sink)."""
        with self._lock:
            self._write_markers([["*", "rebuild-" + uuid.uuid4().hex, 0]])
            self._backfilled = False
            self.repair_counters()

    @staticmethod
    def _counter_difference(where: str) -> str:
        """Per counter key, what the raw rows say minus what the counters hold, where they differ."""
        raw = COUNTERS_FROM_ROWS.replace("{where}", where)
        return (
            f"SELECT {_COUNTER_KEY}, raw.n - kept.n AS n, raw.total - kept.total AS total,"
            " raw.total2 - kept.total2 AS total2"
            f" FROM ({raw}) AS raw FULL OUTER JOIN"
            f" (SELECT {_COUNTER_KEY}, sum(n) AS n, sum(total) AS total, sum(total2) AS total2"
            f"  FROM {{db}}.usage_counters WHERE {where} GROUP BY {_COUNTER_KEY}) AS kept"
            f" USING ({_COUNTER_KEY})"
            " WHERE raw.n != kept.n OR raw.total != kept.total OR raw.total2 != kept.total2"
            " SETTINGS join_use_nulls = 0")

    def _counter_sums(self, tenant_id: str, kind: str, start: datetime, end: datetime, keys: str,
                      names: str) -> list[tuple]:
        """(keys..., n, total, total2) of one kind of counter over [start, end), grouped by `names`,
        what summed to nothing left out."""
        return self._query(
            f"SELECT {keys}, sum(n) AS n, sum(total), sum(total2) FROM {{db}}.usage_counters"
            f" WHERE tenant_id = %(t)s AND kind = %(kind)s AND period >= {_ts('start')} AND period < {_ts('end')}"
            f" GROUP BY {names} HAVING n != 0 ORDER BY {names}",
            t=tenant_id, kind=kind, start=millis(start), end=millis(end))

    def counter_difference(self, tenant_id: str | None = None) -> list[tuple]:
        """The keys where the counters and the raw rows disagree (empty when they agree)."""
        where = "1" if tenant_id is None else "tenant_id = %(t)s"
        return self._query(self._counter_difference(where), t=tenant_id or "")

    # -- one resolution's evidence --------------------------------------------------------------------

    def evidence_reply(self, tenant_id: str, resolution_id: str) -> AiReply | None:
        """The resolution's reply with its conversation (the earliest copy, as settling keeps it)."""
        rows = self._query(
            f"SELECT {', '.join(REPLY_COLUMNS + EVIDENCE_COLUMNS)} FROM {{db}}.resolution_events"
            " WHERE tenant_id = %(t)s AND resolution_id = %(r)s ORDER BY created_at LIMIT 1",
            t=tenant_id, r=resolution_id)
        if not rows:
            return None
        row = rows[0]
        return AiReply(resolution_id=row[0], tenant_id=row[1], ticket_id=row[2], decision=row[3],
                       adapter_version=row[4], created_at=utc(row[5]), latency_ms=row[6], category=row[7],
                       confidence=row[8], action_name=row[9], action_status=row[10], action_latency_ms=row[11],
                       conversation=row[12], reply=row[13], action=row[14], action_answer=row[15],
                       escalation_reason=row[16])

    def outcomes_of(self, tenant_id: str, resolution_id: str) -> list[Outcome]:
        rows = self._query(f"SELECT {', '.join(OUTCOME_COLUMNS)} FROM {{db}}.outcome_events FINAL"
                           " WHERE tenant_id = %(t)s AND resolution_id = %(r)s ORDER BY occurred_at, event_id",
                           t=tenant_id, r=resolution_id)
        return [Outcome(event_id=r[0], resolution_id=r[1], tenant_id=r[2], ticket_id=r[3], kind=OutcomeKind(r[4]),
                        csat_score=r[5], occurred_at=utc(r[6]), category=r[7]) for r in rows]

    def lifecycle_of(self, tenant_id: str, resolution_id: str) -> Lifecycle | None:
        rows = self._query(f"SELECT {', '.join(LIFECYCLE_COLUMNS)} FROM {{db}}.resolution_lifecycles FINAL"
                           " WHERE tenant_id = %(t)s AND resolution_id = %(r)s", t=tenant_id, r=resolution_id)
        return _lifecycle(rows[0]) if rows else None

    def charge_rank(self, tenant_id: str, resolution_id: str, month: Month) -> int | None:
        """Its place among the month's charges in event-time order (as the invoice ranks them against the
        free allowance); None when it is not one of them."""
        in_month = f"{{col}} >= {_ts('start')} AND {{col}} < {_ts('end')}"
        rows = self._query(
            "SELECT rank FROM (SELECT resolution_id, row_number() OVER (ORDER BY billed_at, resolution_id) AS rank"
            "  FROM {db}.resolution_lifecycles FINAL"
            f"  WHERE tenant_id = %(t)s AND {in_month.format(col='billed_at')}"
            f"    AND NOT ifNull({in_month.format(col=BILLING_REOPENED_AT)}, 0))"
            " WHERE resolution_id = %(r)s", t=tenant_id, r=resolution_id, start=millis(month.start),
            end=millis(month.end))
        return int(rows[0][0]) if rows else None

    # -- statements ------------------------------------------------------------------------------------

    def write_statement(self, tenant_id: str, month: Month, body: dict, closed_at: datetime) -> None:
        with self._lock:
            self.client.insert(f"{self.db}.statements",
                               [[tenant_id, str(month), json.dumps(body, sort_keys=True), closed_at]],
                               column_names=["tenant_id", "month", "body", "closed_at"])

    def statement(self, tenant_id: str, month: Month) -> dict | None:
        """The closed month's statement as it was frozen, or None while the month is open."""
        rows = self._query("SELECT body FROM {db}.statements FINAL WHERE tenant_id = %(t)s AND month = %(m)s",
                           t=tenant_id, m=str(month))
        return json.loads(rows[0][0]) if rows else None

    def all_watermarks(self) -> dict[str, datetime]:
        rows = self._query("SELECT tenant_id, max(watermark) FROM {db}.tenant_watermarks GROUP BY tenant_id")
        return {tenant: utc(moment) for tenant, moment in rows}

    def closed_months(self, tenant_id: str) -> set[str]:
        return {row[0] for row in self._query(
            "SELECT DISTINCT month FROM {db}.statements WHERE tenant_id = %(t)s", t=tenant_id)}

    def first_event_month(self, tenant_id: str) -> Month | None:
        rows = self._query("SELECT min(created_at), count() FROM {db}.resolution_events WHERE tenant_id = %(t)s",
                           t=tenant_id)
        return Month.of(utc(rows[0][0])) if rows and rows[0][1] else None

    def month_end_states(self, tenant_id: str, month: Month, terms: Terms) -> dict[State, int]:
        """How many of the tenant's resolutions created in `month` were in each state when it ended (as
        domain/statements.py counts_at_month_end has it), folded in ClickHouse."""
        codes = {code: state for state, code in settle_sql.STATE_CODES.items()}
        rows = self._query(settle_sql.MONTH_END_STATES, t=tenant_id, start=millis(month.start),
                           end=millis(month.end), **settle_sql.terms_parameters({tenant_id: terms}))
        counts = {state: 0 for state in STATES}
        counts.update({codes[code]: int(n) for code, n in rows})
        return counts

    # -- disputes --------------------------------------------------------------------------------------

    def write_dispute(self, dispute: Dispute) -> None:
        row = [dispute.tenant_id, dispute.resolution_id, dispute.reason, dispute.status, dispute.opened_at,
               dispute.decided_at, dispute.note, dispute.credit_month, dispute.credit,
               0 if dispute.status == OPEN else 1]
        with self._lock:
            self.client.insert(f"{self.db}.disputes", [row], column_names=[*DISPUTE_COLUMNS, "stage"])

    def dispute(self, tenant_id: str, resolution_id: str) -> Dispute | None:
        found = self.disputes(tenant_id, resolution_id=resolution_id)
        return found[0] if found else None

    def disputes(self, tenant_id: str | None = None, *, status: str | None = None,
                 resolution_id: str | None = None, limit: int = 500) -> list[Dispute]:
        """Disputes, newest first; of one tenant, one status, one resolution when given."""
        where, params = [], {"limit": limit}
        for column, value in (("tenant_id", tenant_id), ("status", status), ("resolution_id", resolution_id)):
            if value is not None:
                where.append(f"{column} = %({column})s")
                params[column] = value
        rows = self._query(f"SELECT {', '.join(DISPUTE_COLUMNS)} FROM {{db}}.disputes FINAL"
                           f" {'WHERE ' + ' AND '.join(where) if where else ''}"
                           " ORDER BY opened_at DESC, tenant_id, resolution_id LIMIT %(limit)s", **params)
        return [Dispute(tenant_id=r[0], resolution_id=r[1], reason=r[2], status=r[3], opened_at=utc(r[4]),
                        decided_at=utc(r[5]), note=r[6], credit_month=r[7], credit=r[8]) for r in rows]

    # -- reads -----------------------------------------------------------------------------------------

    def lifecycles(self, tenant_id: str) -> list[Lifecycle]:
        rows = self._query(f"SELECT {', '.join(LIFECYCLE_COLUMNS)} FROM {{db}}.resolution_lifecycles FINAL"
                           " WHERE tenant_id = %(t)s ORDER BY resolution_id", t=tenant_id)
        return [_lifecycle(r) for r in rows]

    def invoice(self, tenant_id: str, month: Month, terms: Terms) -> Invoice:
        """The month's invoice from the hourly counters (domain/counters.py), the arithmetic in the core
        (Decimal); the same figures as `invoice_from_rows`, which it falls back to until the counters
        are backfilled."""
        if not self.counters_backfilled():
            return self.invoice_from_rows(tenant_id, month, terms)
        counts = {State(label): int(n) for label, n, _, _ in self._counter_sums(
            tenant_id, STATE, month.start, month.end, "label", "label")}
        lookback = Month.of(month.start - terms.reopen_window)
        charges = {(utc(period), int(value)): int(n) for period, value, n, _, _ in self._counter_sums(
            tenant_id, CHARGE, lookback.start, month.end, "period, value", "period, value")}
        settled = [Charge(utc(billed), utc(reopened)) for billed, reopened in self._query(
            "SELECT billed_at, reopened_at FROM {db}.resolution_lifecycles FINAL"
            " WHERE tenant_id = %(t)s AND resolution_id IN (SELECT resolution_id FROM {db}.disputes FINAL"
            "   WHERE tenant_id = %(t)s AND status = 'accepted')"
            f" AND billed_at >= {_ts('start')} AND billed_at < {_ts('end')}",
            t=tenant_id, start=millis(lookback.start), end=millis(month.end))]
        billable, paid_reversals = charge_figures(month, terms, charges, settled)
        if paid_reversals is None:  # the free allowance ran out within a reversed charge's hour
            paid_reversals = self._paid_reversals_from_rows(tenant_id, month, terms)
        return invoice_from_figures(tenant_id, month, terms, counts, billable, paid_reversals,
                                    self._dispute_credits(tenant_id, month))

    def _dispute_credits(self, tenant_id: str, month: Month) -> list:
        return [row[0] for row in self._query(
            "SELECT credit FROM {db}.disputes FINAL"
            " WHERE tenant_id = %(t)s AND status = 'accepted' AND credit_month = %(m)s", t=tenant_id, m=str(month))]

    def _paid_reversals_from_rows(self, tenant_id: str, month: Month, terms: Terms) -> int:
        """A reopen in this month credits a charge of an earlier month if that charge was past the free
        allowance in its own month: rank the earlier months' charges the way their invoices did."""
        in_month = f"{{col}} >= {_ts('start')} AND {{col}} < {_ts('end')}"
        reopened = in_month.format(col=BILLING_REOPENED_AT)
        lookback = Month.of(month.start - terms.reopen_window).start
        return int(self._query(
            f"SELECT countIf(rank > %(free)s AND ifNull({reopened}, 0)) FROM ("
            "  SELECT resolution_id, reopened_at,"
            "    row_number() OVER (PARTITION BY toStartOfMonth(billed_at) ORDER BY billed_at, resolution_id) AS rank"
            "  FROM {db}.resolution_lifecycles FINAL"
            f"  WHERE tenant_id = %(t)s AND billed_at >= {_ts('lookback')} AND billed_at < {_ts('start')}"
            f"    AND ({BILLING_REOPENED_AT} IS NULL"
            f"         OR toStartOfMonth({BILLING_REOPENED_AT}) != toStartOfMonth(billed_at)))",
            free=terms.free_units, lookback=millis(lookback), t=tenant_id, start=millis(month.start),
            end=millis(month.end))[0][0])

    def invoice_from_rows(self, tenant_id: str, month: Month, terms: Terms) -> Invoice:
        """The month's invoice counted from every lifecycle row (what the counters must agree with)."""
        in_month = f"{{col}} >= {_ts('start')} AND {{col}} < {_ts('end')}"
        created, billed, reopened = (in_month.format(col=column)
                                     for column in ("created_at", "billed_at", BILLING_REOPENED_AT))
        state_counts = ", ".join(f"countIf(({created}) AND state = '{s.value}')" for s in STATES)
        params = dict(t=tenant_id, start=millis(month.start), end=millis(month.end))
        row = self._query(
            f"SELECT {state_counts}, countIf(ifNull({billed}, 0) AND NOT ifNull({reopened}, 0))"
            " FROM {db}.resolution_lifecycles FINAL"
            f" WHERE tenant_id = %(t)s AND (({created}) OR ifNull({billed}, 0))", **params)[0]
        counts = {state: int(n) for state, n in zip(STATES, row)}
        billable = int(row[len(STATES)])
        return invoice_from_figures(tenant_id, month, terms, counts, billable,
                                    self._paid_reversals_from_rows(tenant_id, month, terms),
                                    self._dispute_credits(tenant_id, month))

    def usage(self, tenant_id: str, start: datetime, end: datetime, granularity: str) -> dict:
        """Resolutions by state, rates, CSAT and latency over [start, end), per period and per category:
        from the hourly counters when the range is whole hours (every caller's is), else from the rows."""
        whole_hours = all(moment == moment.replace(minute=0, second=0, microsecond=0) for moment in (start, end))
        if not whole_hours or not self.counters_backfilled():
            return self.usage_from_rows(tenant_id, start, end, granularity)
        period = f"{_period(BUCKETS[granularity], 'period')} AS p"

        def summed(kind: str, keys: str, names: str) -> list[tuple]:
            return self._counter_sums(tenant_id, kind, start, end, keys, names)

        by_period: dict[str, dict[str, int]] = defaultdict(lambda: {s.value: 0 for s in STATES})
        for moment, label, n, _, _ in summed(STATE, f"{period}, label", "p, label"):
            by_period[_period_key(moment)][label] += int(n)
        by_category: dict[str, list] = {}
        for category, label, n, rating_sum, rated in summed(STATE, "category, label", "category, label"):
            entry = by_category.setdefault(category, [{s.value: 0 for s in STATES}, 0, 0])
            entry[0][label] += int(n)
            entry[1] += int(rating_sum)
            entry[2] += int(rated)
        histogram = [(int(value), int(n)) for value, _, n, _, _ in summed(LATENCY, "value, label", "value, label")]
        count = sum(n for _, n in histogram)
        ratings: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        scores: dict[int, int] = defaultdict(int)
        for moment, score, n, _, _ in summed(CSAT, f"{period}, value", "p, value"):
            ratings[_period_key(moment)][0] += int(score) * int(n)
            ratings[_period_key(moment)][1] += int(n)
            scores[int(score)] += int(n)
        periods = {key: UsagePeriod(key, by_period.get(key, {s.value: 0 for s in STATES}),
                                    ratings[key][0] / ratings[key][1] if ratings.get(key) else None,
                                    ratings[key][1] if ratings.get(key) else 0)
                   for key in set(by_period) | set(ratings)}
        actions = [(_period_key(moment), status, int(n), int(latency) / int(n))
                   for moment, status, n, latency, _ in summed(ACTION, f"{period}, label", "p, label")]
        csat_total = sum(scores.values())
        return {
            "periods": [periods[k] for k in sorted(periods)],
            "categories": [(name, counts, rating_sum / rated if rated else None, rated)
                           for name, (counts, rating_sum, rated) in sorted(by_category.items())],
            "latency": {"count": count,
                        "avg_ms": sum(v * n for v, n in histogram) / count if count else None,
                        "p50_ms": float(exact_quantile(histogram, 0.5)) if count else None,
                        "p95_ms": float(exact_quantile(histogram, 0.95)) if count else None,
                        "max_ms": max(v for v, _ in histogram) if count else None},
            "actions": actions,
            "csat": {"count": csat_total,
                     "average": sum(s * n for s, n in scores.items()) / csat_total if csat_total else None,
                     "distribution": {str(score): int(scores.get(score, 0)) for score in range(1, 6)}},
        }

    def usage_from_rows(self, tenant_id: str, start: datetime, end: datetime, granularity: str) -> dict:
        """Resolutions by state, rates, CSAT and latency over [start, end), per period and per category,
        counted from every row."""
        bucket = BUCKETS[granularity]
        params = dict(t=tenant_id, start=millis(start), end=millis(end))
        where = f"tenant_id = %(t)s AND created_at >= {_ts('start')} AND created_at < {_ts('end')}"
        state_counts = ", ".join(f"countIf(state = '{s.value}')" for s in STATES)
        per_period = self._query(
            f"SELECT {_period(bucket, 'created_at')} AS period, {state_counts}"
            " FROM {db}.resolution_lifecycles FINAL"
            f" WHERE {where} GROUP BY period ORDER BY period", **params)
        per_category = self._query(
            f"SELECT category, {state_counts}, avgIf(csat_score, csat_score > 0), countIf(csat_score > 0)"
            f" FROM {{db}}.resolution_lifecycles FINAL WHERE {where} GROUP BY category ORDER BY category",
            **params)
        latency = self._query(
            "SELECT count(), avg(latency_ms), quantileExact(0.5)(latency_ms),"
            " quantileExact(0.95)(latency_ms),"
            f" max(latency_ms) FROM {{db}}.resolution_lifecycles FINAL WHERE {where}", **params)[0]
        csat_where = (f"tenant_id = %(t)s AND kind = 'csat' AND occurred_at >= {_ts('start')}"
                      f" AND occurred_at < {_ts('end')}")
        csat_periods = self._query(
            f"SELECT {_period(bucket, 'occurred_at')} AS period, avg(csat_score), count()"
            " FROM {db}.outcome_events FINAL"
            f" WHERE {csat_where} GROUP BY period ORDER BY period", **params)
        csat_scores = dict(self._query(
            f"SELECT csat_score, count() FROM {{db}}.outcome_events FINAL WHERE {csat_where}"
            " GROUP BY csat_score",
            **params))

        def counts_of(values: Sequence[int]) -> dict[str, int]:
            return {state.value: int(n) for state, n in zip(STATES, values)}

        csat_by_period = {_period_key(p): (float(avg), int(n)) for p, avg, n in csat_periods}
        periods: dict[str, UsagePeriod] = {}
        for row in per_period:
            key = _period_key(row[0])
            avg, n = csat_by_period.get(key, (None, 0))
            periods[key] = UsagePeriod(key, counts_of(row[1:]), avg, n)
        for key, (avg, n) in csat_by_period.items():
            if key not in periods:
                periods[key] = UsagePeriod(key, counts_of([0] * len(STATES)), avg, n)
        actions = self._query(
            f"SELECT {_period(bucket, 'created_at')} AS period, action_status, count(), avg(action_latency_ms)"
            " FROM {db}.resolution_events FINAL"
            f" WHERE {where} AND action_status != '' GROUP BY period, action_status ORDER BY period, action_status", **params)
        csat_total = sum(csat_scores.values())
        csat_sum = sum(int(score) * n for score, n in csat_scores.items())
        return {
            "periods": [periods[k] for k in sorted(periods)],
            "categories": [(row[0], counts_of(row[1:1 + len(STATES)]),
                            float(row[-2]) if row[-1] else None, int(row[-1])) for row in per_category],
            "latency": {"count": int(latency[0]), "avg_ms": float(latency[1]) if latency[0] else None,
                        "p50_ms": float(latency[2]) if latency[0] else None,
                        "p95_ms": float(latency[3]) if latency[0] else None,
                        "max_ms": int(latency[4]) if latency[0] else None},
            "actions": [(_period_key(period), status, int(n), float(avg)) for period, status, n, avg in actions],
            "csat": {"count": csat_total,
                     "average": csat_sum / csat_total if csat_total else None,
                     "distribution": {str(score): int(csat_scores.get(score, 0)) for score in range(1, 6)}},
        }

    def escalation_reasons(self, tenant_id: str, start: datetime, end: datetime) -> list[tuple[str, int]]:
        """(reason, count) of the AI's own escalations over [start, end), and the human take-overs of
        replies it had sent (reason "a human took over")."""
        params = dict(t=tenant_id, start=millis(start), end=millis(end))
        where = f"tenant_id = %(t)s AND created_at >= {_ts('start')} AND created_at < {_ts('end')}"
        rows = [(reason, int(n)) for reason, n in self._query(
            "SELECT escalation_reason, count() FROM {db}.resolution_events FINAL"
            f" WHERE {where} AND decision = 'escalate' GROUP BY escalation_reason", **params)]
        taken = self._query("SELECT count() FROM {db}.resolution_lifecycles FINAL"
                            f" WHERE {where} AND state = 'escalated' AND decided_by != resolution_id", **params)[0][0]
        return rows + ([("a human took over", int(taken))] if taken else [])

    def activity_span(self, tenant_id: str, start: datetime, end: datetime) -> tuple[datetime | None, datetime | None]:
        """The first and the last AI reply over [start, end)."""
        row = self._query("SELECT min(created_at), max(created_at), count() FROM {db}.resolution_events"
                          f" WHERE tenant_id = %(t)s AND created_at >= {_ts('start')} AND created_at < {_ts('end')}",
                          t=tenant_id, start=millis(start), end=millis(end))[0]
        return (utc(row[0]), utc(row[1])) if row[2] else (None, None)

    def resolutions(self, tenant_id: str, *, state: str | None, start: datetime | None, end: datetime | None,
                    limit: int, offset: int) -> tuple[int, list[Lifecycle]]:
        conditions = ["tenant_id = %(t)s"]
        params: dict = dict(t=tenant_id, limit=limit, offset=offset)
        if state:
            conditions.append("state = %(state)s")
            params["state"] = state
        if start:
            conditions.append(f"created_at >= {_ts('start')}")
            params["start"] = millis(start)
        if end:
            conditions.append(f"created_at < {_ts('end')}")
            params["end"] = millis(end)
        where = " AND ".join(conditions)
        total = self._query(f"SELECT count() FROM {{db}}.resolution_lifecycles FINAL WHERE {where}",
                            **params)[0][0]
        rows = self._query(
            f"SELECT {', '.join(LIFECYCLE_COLUMNS)} FROM {{db}}.resolution_lifecycles FINAL WHERE {where}"
            " ORDER BY created_at DESC, resolution_id LIMIT %(limit)s OFFSET %(offset)s", **params)
        return int(total), [_lifecycle(r) for r in rows]
