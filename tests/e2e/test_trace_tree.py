"""One trace per ticket turn, across the services as the stack runs them: gateway request → Kafka →
faust processing → bridge → gRPC Resolve → outbound post → metering write. Every service exports OTLP to
an in-memory collector in this test; the spans of the turn must form one tree."""

import json
import os
import subprocess
import sys

import httpx
import pytest

from clonedesk.core.tenants import TenantStore
from tests.conftest import free_port, wait_until
from tests.ingest.harness import sign_zendesk
from tests.ingest.payloads import body_of, zendesk_comment, zendesk_created
from tests.otlp_collector import OtlpCollector

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TURN_SERVICES = {"clonedesk-gateway", "clonedesk-streams", "clonedesk-bridge", "clonedesk-resolver",
                 "clonedesk-outbound", "clonedesk-metering"}
# The metrics an operator watches: webhook rate/errors, consumer lag, resolve latency, adapter versions,
# resolutions by state (the trainer's refresh time is checked in the trainer's tests).
EXPECTED_METRICS = {
    ("clonedesk-gateway", "clonedesk.gateway.webhooks"),
    ("clonedesk-bridge", "clonedesk.kafka.consumer_lag"),
    ("clonedesk-outbound", "clonedesk.kafka.consumer_lag"),
    ("clonedesk-metering", "clonedesk.kafka.consumer_lag"),
    ("clonedesk-resolver", "resolver.latency_ms"),
    ("clonedesk-resolver", "resolver.adapter.version"),
    ("clonedesk-metering", "metering.resolutions.settled"),
}
COMPONENTS = "broker,gateway,streams,resolver,bridge,outbound,helpdesk-sim,metering"


def _clonedesk(env, *args, check=True):
    result = subprocess.run([sys.executable, "-m", "clonedesk", *args], env=env, capture_output=True, text=True,
                            timeout=240)
    if check and result.returncode:
        raise AssertionError(f"clonedesk {' '.join(args)}: {result.stdout}\n{result.stderr}")
    return result


def test_a_ticket_turn_is_one_trace_tree_across_the_services(zoo, tmp_path):
    data = tmp_path / "data"
    zoo.install(data, "alpha", [1], current=1)
    store = TenantStore(data)
    tenant = store.get("alpha")
    tenant.live = True
    store.save(tenant)
    with OtlpCollector() as collector:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLONEDESK_")}
        env.update({
            "CLONEDESK_DATA_DIR": str(data), "CLONEDESK_BASE_MODEL": str(zoo.base_model),
            "CLONEDESK_OTLP_ENDPOINT": collector.endpoint, "CLONEDESK_TOPIC_PARTITIONS": "2",
            "CLONEDESK_BROKER_PORT": str(free_port()), "CLONEDESK_GATEWAY_PORT": str(free_port()),
            "CLONEDESK_RESOLVER_PORT": str(free_port()), "CLONEDESK_HELPDESK_SIM_PORT": str(free_port()),
            "CLONEDESK_API_PORT": str(free_port()), "OTEL_BSP_SCHEDULE_DELAY": "500",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        })
        _clonedesk(env, "up", "--ephemeral", "--detach", "--only", COMPONENTS)
        try:
            gateway = f"http://127.0.0.1:{env['CLONEDESK_GATEWAY_PORT']}/webhooks/zendesk/alpha"
            for payload in (zendesk_created("4711"),
                            zendesk_comment("4711", "c-1", "Hi, I need a table for two tonight.", staff=False)):
                body = body_of(payload)
                response = httpx.post(gateway, content=body, headers=sign_zendesk(tenant.zendesk_secret, body),
                                      timeout=30)
                assert response.status_code == 200, response.text

            def full_turn():
                bridged = [s for s in collector.spans if s.name == "bridge.resolve"]
                for span in bridged:
                    services = {s.service for s in collector.trace(span.trace_id)}
                    if TURN_SERVICES <= services:
                        return collector.trace(span.trace_id)
                return None

            spans = wait_until(full_turn, timeout=180, interval=1, message="a traced turn through every service")
            wait_until(lambda: EXPECTED_METRICS <= {(s, n) for s, names in collector.metrics.items()
                                                              for n in names} or None,
                       timeout=30, interval=1, message="the services' metrics")
        finally:
            _clonedesk(env, "down", check=False)
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if not s.parent_span_id]
    assert len(roots) == 1 and roots[0].service == "clonedesk-gateway", [(s.service, s.name) for s in roots]
    orphans = [(s.service, s.name) for s in spans if s.parent_span_id and s.parent_span_id not in ids]
    assert not orphans, f"spans whose parent is not in the trace: {orphans}"
    by_service = {}
    for span in spans:
        by_service.setdefault(span.service, []).append(span)
    for service in TURN_SERVICES:
        tagged = [s for s in by_service[service] if s.attributes.get("tenant.id") == "alpha"
                  and s.attributes.get("ticket.id") == "4711"]
        assert tagged, f"no span of {service} carries tenant.id and ticket.id: {json.dumps([s.attributes for s in by_service[service]], default=str)}"
    names = {s.name for s in spans}
    assert {"bridge.resolve", "Resolver/Resolve", "outbound.post", "metering.write"} <= names, names
