"""The sink stores a batch on a connection of its own while the batch before it settles, and commits each
batch only once it settled: over the real broker and chDB (a store opened from its DSN, as the service
opens it), with the settling held until the next batch was stored, so the two provably overlap."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest

from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.domain.billing import Month
from clonedesk.metering.domain.terms import Terms
from clonedesk.metering.entrypoints.sink import MeteringSink
from clonedesk.metering.service_layer.statements import statement_json
from tests.metering.helpers import expected_invoices, produce, run_sink_until_idle, scenario
from tests.metering.test_counters import assert_counters_agree_with_rows

pytestmark = pytest.mark.integration

MONTHS = ("2026-10", "2026-11")


class HeldSettling:
    """Wraps the store's two steps (class-wide: the sink's second connection is another store object).
    The first settling of a batch holding `tenant` waits until the batch after it was stored, then goes
    on, or raises where `fail` is set: a sink that dies while the next batch is stored, not committed."""

    def __init__(self, monkeypatch, tenant: str, fail: bool = False):
        self.tenant, self.fail = tenant, fail
        self.stored: list[str] = []  # batch ids, in the order they were stored
        self.held: list[bool] = []  # per held settling: whether the next batch was stored meanwhile
        self._changed = threading.Condition()
        store_staged, settle_batch = MeteringStore.store_staged, MeteringStore.settle_batch

        def storing(store, batch_id, batch, expected):
            store_staged(store, batch_id, batch, expected)
            with self._changed:
                self.stored.append(batch_id)
                self._changed.notify_all()

        def settling(store, batch_id, terms):
            if self.tenant in terms and not self.held:
                with self._changed:
                    self.held.append(self._changed.wait_for(
                        lambda: batch_id in self.stored and self.stored[-1] != batch_id, timeout=30))
                if self.fail:
                    raise RuntimeError("the sink died while the next batch was stored")
            return settle_batch(store, batch_id, terms)

        monkeypatch.setattr(MeteringStore, "store_staged", storing)
        monkeypatch.setattr(MeteringStore, "settle_batch", settling)


TERMS = Terms(free_units=5)


async def produced(kafka_bootstrap: str):
    """A new tenant's events, on the topics: (tenant, replies, outcomes, its statements as they should be)."""
    tenant = "pipe-" + uuid.uuid4().hex[:6]
    replies, outcomes = scenario(tenant, datetime(2026, 10, 20, tzinfo=timezone.utc), 90, every_hours=5)
    await produce(kafka_bootstrap, replies, outcomes)
    return tenant, replies, outcomes, expected_invoices(tenant, replies, outcomes, TERMS, list(MONTHS))


async def test_a_batch_is_stored_while_the_one_before_settles_and_every_figure_holds(
        kafka_bootstrap, clickhouse_dsn, unique_database, group_id, monkeypatch):
    tenant, replies, outcomes, want = await produced(kafka_bootstrap)
    terms = TERMS
    hold = HeldSettling(monkeypatch, tenant)

    store = MeteringStore.connect(clickhouse_dsn, unique_database)
    sink = MeteringSink(kafka_bootstrap, store, lambda _t: terms, group_id=group_id, batch_size=40)
    await run_sink_until_idle(sink, len(replies) + len(outcomes))
    assert hold.held == [True]  # the next batch was stored before this one had settled
    assert len(store.lifecycles(tenant)) == len(replies)
    for month in MONTHS:
        assert statement_json(store, tenant, Month.parse(month), terms) == want[month]
    assert_counters_agree_with_rows(store, tenant, terms)
    assert store.open_repairs() == []  # each batch closed its marker once settled
    store.close()


async def test_a_sink_that_dies_while_the_next_batch_is_stored_loses_and_doubles_nothing(
        kafka_bootstrap, clickhouse_dsn, unique_database, group_id, monkeypatch):
    tenant, replies, outcomes, want = await produced(kafka_bootstrap)
    terms = TERMS
    hold = HeldSettling(monkeypatch, tenant, fail=True)
    store = MeteringStore.connect(clickhouse_dsn, unique_database)
    dying = MeteringSink(kafka_bootstrap, store, lambda _t: terms, group_id=group_id, batch_size=40)
    with pytest.raises(RuntimeError, match="died"):
        await asyncio.wait_for(dying.run(asyncio.Event()), 60)
    assert hold.held == [True]
    assert any(t == tenant for t, _ in store.open_repairs())  # the dead batches' markers stay open
    monkeypatch.undo()

    # The next sink of the group gets both batches again (neither was committed) and repairs the counters.
    sink = MeteringSink(kafka_bootstrap, store, lambda _t: terms, group_id=group_id, batch_size=40)
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    try:
        deadline = time.monotonic() + 90
        while {m: statement_json(store, tenant, Month.parse(m), terms) for m in MONTHS} != want:
            assert not task.done() or task.result() is None
            assert time.monotonic() < deadline
            await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert len(store.lifecycles(tenant)) == len(replies)
    assert_counters_agree_with_rows(store, tenant, terms)
    store.close()
