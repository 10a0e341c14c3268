"""The caller's trace continues through Resolver/Resolve (W3C traceparent in gRPC metadata), and the
resolver's span says which tenant and adapter served the request."""

from __future__ import annotations

import pytest
from clonedesk.core.telemetry import setup_telemetry
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from .conftest import CUSTOMER_LINES, RunningResolver, resolve_request

pytestmark = pytest.mark.integration


@pytest.fixture
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):  # another test set the process's provider already
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        setup_telemetry("resolver-test", span_processors=[SimpleSpanProcessor(exporter)])
    return exporter


async def test_resolve_continues_the_callers_trace(zoo, tmp_path, spans):
    data = tmp_path / "data"
    zoo.install(data, "alpha", [1], current=1)
    async with RunningResolver(zoo, data) as resolver:
        with trace.get_tracer("test-client").start_as_current_span("client") as client:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            await resolver.stub.Resolve(
                resolve_request("alpha", "t-1", CUSTOMER_LINES[0]), metadata=tuple(carrier.items())
            )
    trace_id = client.get_span_context().trace_id
    by_name = {s.name: s for s in spans.get_finished_spans() if s.context.trace_id == trace_id}
    assert {"client", "Resolver/Resolve", "resolver.resolve"} <= set(by_name)
    server, work = by_name["Resolver/Resolve"], by_name["resolver.resolve"]
    assert server.parent.span_id == client.get_span_context().span_id
    assert work.parent.span_id == server.context.span_id
    assert work.attributes["tenant.id"] == "alpha" and work.attributes["adapter"] == "alpha@v1"
