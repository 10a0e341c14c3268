"""Events through the real broker into ClickHouse (chDB), read back through the API on a real uvicorn
server; then two full replays of the topics, and the invoices do not move by a cent."""

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clonedesk.core.kafka import make_consumer
from clonedesk.core.telemetry import setup_telemetry
from clonedesk.core.tenants import Plan, TenantStore, admin_api_key
from clonedesk.core.domain.topics import RESOLUTION_OUTCOMES, RESOLUTIONS, dlq
from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.domain.events import OutcomeKind
from clonedesk.metering.domain.lifecycle import State
from clonedesk.metering.domain.terms import Terms
from clonedesk.metering.entrypoints.api import create_app
from clonedesk.metering.entrypoints.sink import MeteringSink
from clonedesk.metering.service_layer.settlement import terms_from_tenants
from clonedesk.v1 import outcomes_pb2
from tests.metering.helpers import (ApiServer, expected_invoices, outcome_message, produce,
                                    run_sink_until_idle, scenario)

pytestmark = pytest.mark.integration

MONTHS = ("2026-10", "2026-11", "2026-12")


async def every_figure(http, tenant, headers):
    """The usage over the whole scenario (per day and per week) and the full resolutions listing."""
    figures = {}
    for granularity in ("day", "week"):
        response = await http.get(f"/v1/tenants/{tenant}/usage", headers=headers, params={
            "from": "2026-10-01", "to": "2026-12-31", "granularity": granularity})
        assert response.status_code == 200, response.text
        figures["usage" if granularity == "day" else "weekly"] = response.json()
    listing = await http.get(f"/v1/tenants/{tenant}/resolutions", params={"limit": 500}, headers=headers)
    figures["listing"] = listing.json()
    return figures


async def dead_letters(bootstrap, topic, key, group):
    consumer = make_consumer(bootstrap, dlq(topic), group_id=group)
    await consumer.start()
    try:
        for _ in range(40):
            batches = await consumer.getmany(timeout_ms=500)
            found = [r for part in batches.values() for r in part if r.key == key]
            if found:
                return found
        return []
    finally:
        await consumer.stop()


async def test_broker_to_clickhouse_to_api_and_replays_twice(settings, kafka_bootstrap, clickhouse_client,
                                                             unique_database, group_id):
    tenant = "acme-" + uuid.uuid4().hex[:6]
    tenants = TenantStore(settings.resolved_data_dir)
    record = tenants.add(tenant)
    record.plan.free_units = 10
    tenants.save(record)
    # the other tenant is on a plan of its own: price, allowance and both windows differ from the default
    other = tenants.add("other-" + uuid.uuid4().hex[:6])
    other.plan = Plan(unit_price_usd="1.25", free_units=5, assumed_window_hours=48, reopen_window_days=3)
    tenants.save(other)
    terms = Terms.from_plan(record.plan)
    other_terms = Terms.from_plan(other.plan)

    replies, outcomes = scenario(tenant, datetime(2026, 10, 24, 6, tzinfo=timezone.utc), 200, every_hours=3.5)
    other_replies, other_outcomes = scenario(other.id, datetime(2026, 10, 20, tzinfo=timezone.utc), 90,
                                             every_hours=7)
    bad_outcome = outcome_message(outcomes[0])
    bad_outcome.tenant_id = "Not A Tenant!"
    poison = [(RESOLUTIONS, f"{tenant}:poison".encode(), b"\xff\x00 not protobuf"),
              (RESOLUTION_OUTCOMES, f"{tenant}:poison".encode(), bad_outcome.SerializeToString())]
    # every outcome sent twice, the second time before its resolution: redelivery and early arrival
    await produce(kafka_bootstrap, [], outcomes[:60])
    # the resolutions carry a producer's trace context, as the resolver's do
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await produce(kafka_bootstrap, replies, outcomes, poison, headers=[("traceparent", traceparent.encode())])
    await produce(kafka_bootstrap, other_replies, other_outcomes)
    total = len(replies) + len(outcomes) + 60 + len(poison) + len(other_replies) + len(other_outcomes)

    store = MeteringStore(clickhouse_client, unique_database)
    store.migrate()
    spans = InMemorySpanExporter()
    metrics = InMemoryMetricReader()
    telemetry = setup_telemetry("metering-test", settings, span_processors=[SimpleSpanProcessor(spans)],
                                metric_readers=[metrics], set_global=False)
    sink = MeteringSink(kafka_bootstrap, store, terms_from_tenants(settings.resolved_data_dir),
                        group_id=group_id, batch_size=97, telemetry=telemetry)
    await run_sink_until_idle(sink, total)
    assert sink.stats.dead_letters >= 2
    batches = [s for s in spans.get_finished_spans() if s.name == "metering.batch"]
    assert sum(s.attributes["metering.replies"] for s in batches) >= len(replies)
    assert any(link.context.trace_id == int("0af7651916cd43dd8448eb211c80319c", 16)
               for s in batches for link in s.links)
    written = {point.attributes["topic"]: point.value
               for metric in metrics.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics
               if metric.name == "metering.rows" for point in metric.data.data_points}
    assert written[RESOLUTIONS] >= len(replies) and written[RESOLUTION_OUTCOMES] >= len(outcomes)

    want = expected_invoices(tenant, replies, outcomes, terms, MONTHS)
    # the data exercises both charges and credits
    assert want["2026-10"]["charged_units"] > 0 and want["2026-11"]["credit_units"] > 0
    headers = {"Authorization": f"Bearer {record.api_key}"}
    with ApiServer(create_app(store, settings.resolved_data_dir)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            first = {}
            for month in MONTHS:
                response = await http.get(f"/v1/tenants/{tenant}/invoice", params={"month": month},
                                          headers=headers)
                assert response.status_code == 200, response.text
                first[month] = response.json()
            assert first == want
            assert first["2026-10"]["unit_price_usd"] == "0.99"
            # an admin reads it too; the other tenant's key may not
            admin = {"Authorization": f"Bearer {admin_api_key(settings.resolved_data_dir)}"}
            assert (await http.get(f"/v1/tenants/{tenant}/invoice", params={"month": "2026-10"},
                                   headers=admin)).json() == want["2026-10"]
            assert (await http.get(f"/v1/tenants/{tenant}/invoice", params={"month": "2026-10"},
                                   headers={"Authorization": f"Bearer {other.api_key}"})).status_code == 403

            # the other tenant's plan, applied by the sink (windows) and the API (price, allowance)
            other_headers = {"Authorization": f"Bearer {other.api_key}"}
            other_invoice = (await http.get(f"/v1/tenants/{other.id}/invoice", params={"month": "2026-10"},
                                            headers=other_headers)).json()
            assert other_invoice == expected_invoices(other.id, other_replies, other_outcomes, other_terms,
                                                      ["2026-10"])["2026-10"]
            assert other_invoice["unit_price_usd"] == "1.25" and other_invoice["free_units"] == 5
            charged, credits = other_invoice["charged_units"], other_invoice["credit_units"]
            assert charged > 0 and other_invoice["total_usd"] == str(Decimal("1.25") * (charged - credits))
            assumed = [life for life in store.lifecycles(other.id) if life.state is State.ASSUMED]
            assert assumed
            assert all(life.billed_at - life.created_at == timedelta(hours=48) for life in assumed)

            before = await every_figure(http, tenant, headers)
            assert before["usage"]["csat"]["count"] == sum(1 for o in outcomes if o.kind is OutcomeKind.CSAT)
            assert before["listing"]["total"] == len(replies)
            for replay in ("replay-1", "replay-2"):
                again = MeteringSink(kafka_bootstrap, store, terms_from_tenants(settings.resolved_data_dir),
                                     group_id=f"{group_id}-{replay}", batch_size=500)
                await run_sink_until_idle(again, total)
                for month in MONTHS:
                    response = await http.get(f"/v1/tenants/{tenant}/invoice", params={"month": month},
                                              headers=headers)
                    assert response.json() == first[month], (replay, month)
                assert await every_figure(http, tenant, headers) == before, replay
                assert (await http.get(f"/v1/tenants/{other.id}/invoice", params={"month": "2026-10"},
                                       headers=other_headers)).json() == other_invoice, replay

    assert len(store.lifecycles(tenant)) == len(replies)
    parked = await dead_letters(kafka_bootstrap, RESOLUTIONS, f"{tenant}:poison".encode(), group_id + "-dlq")
    assert parked and parked[0].value == b"\xff\x00 not protobuf"
    assert dict(parked[0].headers)["dlq.source_topic"] == RESOLUTIONS.encode()
    parked = await dead_letters(kafka_bootstrap, RESOLUTION_OUTCOMES, f"{tenant}:poison".encode(),
                                group_id + "-dlq2")
    assert outcomes_pb2.ResolutionOutcome.FromString(parked[0].value).tenant_id == "Not A Tenant!"
