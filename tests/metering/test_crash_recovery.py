"""Offsets are committed only after ClickHouse accepted the batch: a sink that dies mid-batch loses
nothing and counts nothing twice once the next one takes over its consumer group."""

import asyncio
import time
import uuid
from datetime import datetime, timezone

import pytest

from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.domain.billing import Month
from clonedesk.metering.domain.terms import Terms
from clonedesk.metering.entrypoints.sink import MeteringSink
from clonedesk.metering.adapters import staged_sql
from clonedesk.metering.service_layer.statements import statement_json
from tests.metering.helpers import expected_invoices, produce, scenario

pytestmark = pytest.mark.integration

MONTHS = ("2026-10", "2026-11")


class StoreThatFailsOnce(MeteringStore):
    """The real store; its first write of the tenant's outcomes fails after that batch's resolutions
    went in (the topics also hold other tests' events, read first)."""

    failed = False
    tenant = ""

    def insert_outcome_rows(self, rows):  # a batch the Python codec decoded
        if any(row.tenant_id == self.tenant for row in rows) and not self.failed:
            self.failed = True
            raise RuntimeError("ClickHouse went away")
        super().insert_outcome_rows(rows)

    def _command(self, sql, parameters, settings=None):  # a batch ClickHouse decoded (the sink's way)
        if sql == staged_sql.INSERT_OUTCOMES and not self.failed and self._query(
                "SELECT count() FROM {db}.staged_outcomes WHERE tenant_id = %(t)s AND " + staged_sql.BATCH,
                t=self.tenant, **{k: parameters[k] for k in ("by", "first", "last")})[0][0]:
            self.failed = True
            raise RuntimeError("ClickHouse went away")
        super()._command(sql, parameters, settings)


async def test_a_crash_between_write_and_commit_loses_and_doubles_nothing(kafka_bootstrap, clickhouse_client,
                                                                          unique_database, group_id):
    tenant = "crash-" + uuid.uuid4().hex[:6]
    replies, outcomes = scenario(tenant, datetime(2026, 10, 20, tzinfo=timezone.utc), 120, every_hours=5)
    await produce(kafka_bootstrap, replies, outcomes)
    terms = Terms(free_units=5)
    want = expected_invoices(tenant, replies, outcomes, terms, MONTHS)

    failing = StoreThatFailsOnce(clickhouse_client, unique_database)
    failing.tenant = tenant
    failing.migrate()
    first = MeteringSink(kafka_bootstrap, failing, lambda _t: terms, group_id=group_id, batch_size=60)
    with pytest.raises(RuntimeError, match="went away"):
        await asyncio.wait_for(first.run(asyncio.Event()), 60)
    assert failing.failed

    store = MeteringStore(clickhouse_client, unique_database)
    second = MeteringSink(kafka_bootstrap, store, lambda _t: terms, group_id=group_id, batch_size=60)
    stop = asyncio.Event()
    task = asyncio.create_task(second.run(stop))
    try:
        deadline = time.monotonic() + 90
        while True:
            assert not task.done() or task.result() is None
            got = {m: statement_json(store, tenant, Month.parse(m), terms) for m in MONTHS}
            if got == want:
                break
            assert time.monotonic() < deadline, (got, want)
            await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert len(store.lifecycles(tenant)) == len(replies)
    assert want["2026-10"]["charged_units"] > 0
