"""The sink's records decoded and judged by ClickHouse (adapters/wire.py, adapters/staged_sql.py) as the
Python codec judges them (adapters/codec.py, the definition): the same records rejected for the same
reasons, and the same rows, lifecycles and counters stored from the rest."""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from clonedesk.core.kafka import PoisonMessage
from clonedesk.metering.adapters.codec import outcome_row, reply_row
from clonedesk.core.domain.topics import RESOLUTION_OUTCOMES, RESOLUTIONS
from clonedesk.metering.adapters import staged_sql
from clonedesk.metering.adapters.store import MeteringStore, StagedBatch, StagedRecordsLost, StagingFailed
from clonedesk.metering.adapters.wire import RESOLUTION_SCHEMA, Framer, new_stager
from clonedesk.metering.domain.billing import Month
from clonedesk.metering.domain.terms import Terms
from clonedesk.metering.entrypoints.sink import MeteringSink
from clonedesk.metering.service_layer.settlement import record_rows_and_settle, record_staged_and_settle
from clonedesk.metering.service_layer.statements import statement_json
from clonedesk.v1 import outcomes_pb2, resolver_pb2
from tests.metering.helpers import expected_invoices, produce, run_sink_until_idle, scenario

pytestmark = pytest.mark.integration

START = datetime(2026, 10, 1, tzinfo=timezone.utc)
BAD_UTF8 = "\u2603BADUTF8\u2603"  # replaced by invalid UTF-8 bytes once serialized


def _text(rng: random.Random, longest: int) -> str:
    alphabet = "ab (/\"\\\n\t\x01\x1fé漢😀\u2028 \x0b"
    return "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 5, longest, longest + 3])))


def _rarely(rng: random.Random, usual, broken: list):
    return rng.choice(broken) if rng.random() < 0.04 else usual


def random_resolution(rng: random.Random, n: int) -> bytes:
    tenant = _rarely(rng, rng.choice(["acme", "globex", "a-1"]), ["Bad Tenant", "", "x" * 41])
    message = resolver_pb2.Resolution(
        resolution_id=_rarely(rng, rng.choice([f"r{rng.randrange(n // 3 + 1)}", "é" * 200]), ["", "é" * 201]), tenant_id=tenant,
        ticket_id=_rarely(rng, f"t{n}", [""]), decision=_rarely(rng, rng.choice([1, 2, 3, 4]), [0, 7]),
        reply=_text(rng, 4000), adapter_version=_text(rng, 200), latency_ms=rng.choice([0, 120, -5, 2**40]),
        action=_text(rng, 4000), confidence=rng.random(), category=rng.choice(["billing", "", _text(rng, 200)]),
        escalation_reason=_text(rng, 500), request_id=rng.choice(["q", ""]))
    if rng.random() < 0.95:
        at = START + (timedelta(minutes=rng.randrange(60 * 24 * 40), milliseconds=rng.randrange(1000))
                      if rng.random() < 0.7 else timedelta(hours=rng.randrange(3)))  # copies that tie
        message.created_at.FromDatetime(at)
        if rng.random() < 0.05:
            message.created_at.seconds = rng.choice([1, 8_000_000_000])
        if rng.random() < 0.03:
            message.created_at.nanos = rng.choice([-1, 1_000_000_000])
    if rng.random() < 0.5:
        run = message.action_run
        run.call = rng.choice(["Refund(order=7)", " \t Book (x)", "NoParens", "", "(x)", "é" * 120 + "(1)"])
        run.status = _rarely(rng, rng.choice([0, 1, 2, 3, 4, 5, 6]), [9])
        run.answer = _text(rng, 4000)
        run.latency_ms = rng.choice([0, 40, -1, 2**33])
    for _ in range(rng.choice([0, 0, 1, 3, 55])):
        message.conversation.add(role=rng.choice([0, 1, 2, 3, 4, 9]), text=_text(rng, 4000))
    if rng.random() < 0.03:
        message.request_id = BAD_UTF8
    return _with_bad_utf8(message.SerializeToString())


def random_outcome(rng: random.Random, n: int) -> bytes:
    kind = _rarely(rng, rng.choice([1, 2, 3, 4, 5, 6, 6, 6]), [0, 8])
    message = outcomes_pb2.ResolutionOutcome(
        event_id=_rarely(rng, f"e{rng.randrange(n // 3 + 1)}", ["", "e" * 201]), resolution_id=f"r{rng.randrange(n // 3 + 1)}",
        tenant_id=_rarely(rng, rng.choice(["acme", "globex"]), ["Nope!"]), ticket_id=_rarely(rng, "t1", [""]), kind=kind,
        csat_score=_rarely(rng, rng.choice([1, 3, 4, 5]), [0, 6]) if kind == 6 else rng.choice([0, 0, 3]),
        category=rng.choice(["billing", "", "c" * 250]))
    if rng.random() < 0.95:
        message.occurred_at.FromDatetime(START + timedelta(minutes=rng.randrange(60 * 24 * 60)))
    if rng.random() < 0.03:
        message.category = BAD_UTF8
    return _with_bad_utf8(message.SerializeToString())


def _with_bad_utf8(payload: bytes) -> bytes:
    marker = BAD_UTF8.encode()
    return payload.replace(marker, b"\xff\xfe" + b"z" * (len(marker) - 2))


def staged(values: list[tuple[str, bytes]], first: int = 0) -> StagedBatch:
    stager = new_stager()
    framer, resolutions, outcomes = Framer(stager), [], []
    for seq, (topic, value) in enumerate(values, first):
        framer.add(resolutions if topic == "r" else outcomes, value, seq)
    return StagedBatch(stager, first, first + len(values) - 1, b"".join(resolutions), b"".join(outcomes))


def codec_verdicts(values: list[tuple[str, bytes]]):
    """(seq -> row of each record the codec keeps, seq -> why of each it rejects)."""
    rows, rejected = {}, {}
    for seq, (topic, value) in enumerate(values):
        try:
            rows[seq] = (reply_row if topic == "r" else outcome_row)(value)
        except PoisonMessage as exc:
            rejected[seq] = str(exc)
    return rows, rejected


def table_rows(store: MeteringStore, table: str, order: str) -> list[tuple]:
    columns = [name for name, in store._query(
        "SELECT name FROM system.columns WHERE database = %(db)s AND table = %(t)s AND name != 'ingested_at'",
        db=store.db, t=table)]
    return [tuple(json.loads(v) if c == "conversation" else v for c, v in zip(columns, row))
            for row in store._query(f"SELECT {', '.join(columns)} FROM {{db}}.{table} FINAL ORDER BY {order}")]


def counters(store: MeteringStore) -> list[tuple]:
    return store._query("SELECT tenant_id, kind, period, label, category, value, sum(n), sum(total), sum(total2)"
                        " FROM {db}.usage_counters GROUP BY ALL"
                        " HAVING sum(n) != 0 OR sum(total) != 0 OR sum(total2) != 0 ORDER BY ALL")


@pytest.mark.parametrize("seed", [1, 2])
def test_clickhouse_judges_and_stores_records_as_the_python_codec_does(clickhouse_client, seed):
    rng = random.Random(seed)
    values = [("r", random_resolution(rng, n)) if rng.random() < 0.5 else ("o", random_outcome(rng, n))
              for n in range(600)]
    rows, python_rejects = codec_verdicts(values)
    assert 50 < len(python_rejects) < 450  # both kinds of verdict, plenty of each

    staged_store = MeteringStore(clickhouse_client, "t_" + uuid.uuid4().hex[:12])
    python_store = MeteringStore(clickhouse_client, "t_" + uuid.uuid4().hex[:12])
    staged_store.migrate()
    python_store.migrate()
    terms = lambda _tenant: Terms(free_units=3)  # noqa: E731
    for part in (slice(0, 350), slice(350, None)):  # the second batch brings copies of the first's events
        batch = staged(values[part], first=part.start)
        sql_rejects = staged_store.stage_records(batch)
        wanted = {seq: why for seq, why in python_rejects.items() if seq in range(len(values))[part]}
        assert sql_rejects.keys() == wanted.keys()
        for seq, why in sql_rejects.items():
            if wanted[seq].startswith("cannot decode"):  # the two decoders word what they cannot read their own way
                assert why.startswith("cannot decode"), (wanted[seq], why)
            else:
                assert why == wanted[seq]
        kept = [seq for seq in range(len(values))[part] if seq not in wanted]
        assert record_staged_and_settle(staged_store, batch, terms, len(kept)) == record_rows_and_settle(
            python_store, [rows[seq] for seq in kept if values[seq][0] == "r"],
            [rows[seq] for seq in kept if values[seq][0] == "o"], terms)
    for table, order in (("resolution_events", "tenant_id, resolution_id"),
                         ("outcome_events", "tenant_id, resolution_id, event_id"),
                         ("resolution_lifecycles", "tenant_id, resolution_id"), ("tenant_watermarks", "tenant_id")):
        assert table_rows(staged_store, table, order) == table_rows(python_store, table, order), table
    assert counters(staged_store) == counters(python_store)
    assert staged_store._query("SELECT count() FROM {db}.staged_resolutions")[0][0] == 0  # scratch, cleared


def test_a_redelivered_batch_moves_no_figure_and_a_better_copy_moves_its_own(clickhouse_client, unique_database):
    store = MeteringStore(clickhouse_client, unique_database)
    store.migrate()
    reply = resolver_pb2.Resolution(resolution_id="r1", tenant_id="acme", ticket_id="t1", decision=3)
    reply.created_at.FromDatetime(START + timedelta(hours=5))
    reply.action_run.call, reply.action_run.status, reply.action_run.latency_ms = "Refund(order=1)", 1, 40
    rating = outcomes_pb2.ResolutionOutcome(event_id="e1", resolution_id="r1", tenant_id="acme", ticket_id="t1",
                                            kind=6, csat_score=2)
    rating.occurred_at.FromDatetime(START + timedelta(hours=6))
    values = [("r", reply.SerializeToString()), ("o", rating.SerializeToString())]
    terms = lambda _tenant: Terms()  # noqa: E731
    first = staged(values)
    assert store.stage_records(first) == {}
    record_staged_and_settle(store, first, terms, 2)
    before = counters(store)
    assert [row[1] for row in before].count("action") == 1 and [row[1] for row in before].count("csat") == 1
    again = staged(values)
    assert store.stage_records(again) == {}
    record_staged_and_settle(store, again, terms, 2)
    assert counters(store) == before

    # an earlier copy of the reply (kept by the table) with another call outcome, and the rating re-sent at 5
    reply.created_at.FromDatetime(START + timedelta(hours=4))
    reply.action_run.status = 2
    rating.csat_score = 5
    better = staged([("r", reply.SerializeToString()), ("o", rating.SerializeToString())])
    assert store.stage_records(better) == {}
    record_staged_and_settle(store, better, terms, 2)
    moved = {(row[1], row[3], row[5]): row[6] for row in counters(store) if row[1] in ("action", "csat")}
    assert moved == {("action", "failed", 0): 1, ("csat", "", 5): 1}


def test_a_batch_whose_staged_records_vanished_fails_rather_than_store_nothing(clickhouse_client, unique_database):
    """A ClickHouse server that restarts between staging and storing loses the stage (a Memory table): the
    batch must fail (the sink then commits nothing and Kafka delivers it again), not store less."""
    store = MeteringStore(clickhouse_client, unique_database)
    store.migrate()
    rng = random.Random(4)
    values = [("r", random_resolution(rng, n)) for n in range(40)]
    rows, rejected = codec_verdicts(values)
    batch = staged(values)
    assert store.stage_records(batch).keys() == rejected.keys()
    store.drop_staged(batch)  # what a restart does to it
    with pytest.raises(StagedRecordsLost):
        record_staged_and_settle(store, batch, lambda _t: Terms(), len(rows))
    assert store._query("SELECT count() FROM {db}.resolution_events")[0][0] == 0

    half = staged(values)  # some of them lost: after the inserts the stage must still hold every one
    store.stage_records(half)
    store._command("ALTER TABLE {db}.staged_resolutions DELETE WHERE staged_seq < 10 AND " + staged_sql.BATCH,
                   half.parameters)
    with pytest.raises(StagedRecordsLost):
        record_staged_and_settle(store, half, lambda _t: Terms(), len(rows))


def test_records_clickhouse_cannot_decode_leave_nothing_staged(clickhouse_client, unique_database):
    store = MeteringStore(clickhouse_client, unique_database)
    store.migrate()
    good = random_resolution(random.Random(3), 1)
    batch = staged([("r", good)] * 1000 + [("r", b"\xff\x00 not protobuf")])
    with pytest.raises(StagingFailed):
        store.stage_records(batch)
    assert store._query("SELECT count() FROM {db}.staged_resolutions")[0][0] == 0


def test_the_staging_schema_is_the_topic_message_with_strings_as_bytes():
    assert "bytes resolution_id = 1;" in RESOLUTION_SCHEMA and "int32 decision = 4;" in RESOLUTION_SCHEMA
    assert "repeated clonedesk_v1_Turn conversation = 16;" in RESOLUTION_SCHEMA
    # every field of the message is in the schema, by number: nothing of a record is skipped unread
    for field in resolver_pb2.Resolution.DESCRIPTOR.fields:
        assert f" {field.name} = {field.number};" in RESOLUTION_SCHEMA


async def test_the_sink_stages_beside_its_writes_and_bills_as_the_core_does(kafka_bootstrap, clickhouse_dsn,
                                                                           unique_database, group_id):
    """The sink over a store opened from its DSN (as the service opens it: staging on a second connection),
    in small batches, with a record that is no protobuf and one that breaks a rule among the events."""
    tenant = "staged-" + uuid.uuid4().hex[:6]
    replies, outcomes = scenario(tenant, datetime(2026, 10, 20, tzinfo=timezone.utc), 90, every_hours=5)
    broken = outcomes_pb2.ResolutionOutcome(event_id="broken", resolution_id=replies[0].resolution_id,
                                            tenant_id="Not A Tenant!", ticket_id="t0", kind=6, csat_score=5)
    broken.occurred_at.FromDatetime(replies[0].created_at)
    await produce(kafka_bootstrap, replies, outcomes,
                  raw=[(RESOLUTIONS, f"{tenant}:garbage".encode(), b"\xff\x00 not protobuf"),
                       (RESOLUTION_OUTCOMES, f"{tenant}:broken".encode(), broken.SerializeToString())])
    terms = Terms(free_units=5)
    store = MeteringStore.connect(clickhouse_dsn, unique_database)
    second = store.reopen()
    assert second is not store and second.ready()
    second.close()

    sink = MeteringSink(kafka_bootstrap, store, lambda _t: terms, group_id=group_id, batch_size=40)
    await run_sink_until_idle(sink, len(replies) + len(outcomes) + 2)
    assert sink.stats.decoded_in_python >= 1  # the poll with the garbage was judged in Python
    assert sink.stats.dead_letters >= 2
    assert len(store.lifecycles(tenant)) == len(replies)
    want = expected_invoices(tenant, replies, outcomes, terms, ["2026-10", "2026-11"])
    for month in ("2026-10", "2026-11"):
        assert statement_json(store, tenant, Month.parse(month), terms) == want[month]
    assert store._query("SELECT count() FROM {db}.staged_resolutions")[0][0] == 0
    assert store._query("SELECT count() FROM {db}.staged_outcomes")[0][0] == 0


def test_staging_on_chdb_writes_nothing_in_the_working_directory(clickhouse_client, unique_database, tmp_path,
                                                                 monkeypatch):
    """ClickHouse caches a schema given as text under format_schema_path, which chDB cannot set (it would be
    the process's working directory): the store puts the schema in a file under chDB's data path instead."""
    monkeypatch.chdir(tmp_path)
    store = MeteringStore(clickhouse_client, unique_database)
    store.migrate()
    batch = staged([("r", random_resolution(random.Random(5), 1)), ("o", random_outcome(random.Random(6), 1))])
    store.stage_records(batch)
    assert list(tmp_path.iterdir()) == []
    assert list((Path(clickhouse_client.path) / "format_schemas").glob("clonedesk_*.proto"))
