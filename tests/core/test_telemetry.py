import json

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clonedesk.core.settings import Settings
from clonedesk.core.telemetry import TallyCounter, extract_context, inject_headers, read_span_file, setup_telemetry


def test_trace_context_crosses_kafka_headers(tmp_path):
    spans = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    telemetry = setup_telemetry("test", Settings(data_dir=tmp_path), span_processors=[SimpleSpanProcessor(spans)],
                                metric_readers=[reader], set_global=False)
    with telemetry.tracer.start_as_current_span("gateway.accept"):
        headers = inject_headers([("other", b"kept")])
    assert ("other", b"kept") in headers and any(k == "traceparent" for k, _ in headers)
    # ...and on the consumer's side, in another "process":
    with telemetry.tracer.start_as_current_span("streams.process", context=extract_context(headers)):
        pass
    telemetry.meter.create_counter("webhooks").add(2, {"tenant": "acme"})
    telemetry.shutdown()
    produced, consumed = sorted(spans.get_finished_spans(), key=lambda s: s.start_time)
    assert consumed.context.trace_id == produced.context.trace_id
    assert consumed.parent.span_id == produced.context.span_id
    assert produced.resource.attributes["service.name"] == "clonedesk-test"


def test_no_headers_gives_a_fresh_trace(tmp_path):
    spans = InMemorySpanExporter()
    telemetry = setup_telemetry("t2", Settings(data_dir=tmp_path), span_processors=[SimpleSpanProcessor(spans)],
                                metric_readers=[InMemoryMetricReader()], set_global=False)
    with telemetry.tracer.start_as_current_span("x", context=extract_context(None)):
        pass
    telemetry.shutdown()
    assert spans.get_finished_spans()[0].parent is None


def test_default_exporters_write_json_lines_into_the_data_dir(tmp_path):
    telemetry = setup_telemetry("filetest", Settings(data_dir=tmp_path), set_global=False)
    with telemetry.tracer.start_as_current_span("work", attributes={"tenant_id": "acme"}):
        pass
    telemetry.meter.create_counter("things").add(1)
    telemetry.shutdown()  # flushes both
    spans = read_span_file(tmp_path / "telemetry" / "filetest.spans.jsonl")
    assert [s["name"] for s in spans] == ["work"] and spans[0]["attributes"]["tenant_id"] == "acme"
    metric_lines = (tmp_path / "telemetry" / "filetest.metrics.jsonl").read_text().splitlines()
    assert any("things" in json.dumps(json.loads(line)) for line in metric_lines)


def test_tally_counter_reports_running_totals_per_attribute_set(tmp_path):
    reader = InMemoryMetricReader()
    telemetry = setup_telemetry("tally", Settings(data_dir=tmp_path), metric_readers=[reader], set_global=False)
    webhooks = TallyCounter(telemetry.meter, "webhooks")
    for result in ("accepted", "accepted", "401"):
        webhooks.add(1, {"vendor": "zendesk", "result": result})

    def totals():
        points = [point for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
                  for metric in sm.metrics if metric.name == "webhooks" for point in metric.data.data_points]
        return {point.attributes["result"]: point.value for point in points}

    assert totals() == {"accepted": 2, "401": 1}
    webhooks.add(3, {"vendor": "zendesk", "result": "401"})
    assert totals() == {"accepted": 2, "401": 4}  # cumulative, like a synchronous counter's sum
    telemetry.shutdown()


def test_span_lines_keep_parent_links_and_events(tmp_path):
    telemetry = setup_telemetry("lines", Settings(data_dir=tmp_path), set_global=False)
    with telemetry.tracer.start_as_current_span("outer"):
        with telemetry.tracer.start_as_current_span("inner") as inner:
            inner.add_event("retried", {"attempt": 2})
    telemetry.shutdown()
    spans = {s["name"]: s for s in read_span_file(tmp_path / "telemetry" / "lines.spans.jsonl")}
    assert spans["inner"]["parent_id"] == spans["outer"]["context"]["span_id"]
    assert spans["inner"]["context"]["trace_id"] == spans["outer"]["context"]["trace_id"]
    assert spans["outer"]["parent_id"] is None and spans["inner"]["service"] == "clonedesk-lines"
    assert spans["inner"]["events"][0]["attributes"] == {"attempt": 2}
    assert spans["inner"]["end_time_unix_nano"] >= spans["inner"]["start_time_unix_nano"]


def test_span_lines_write_any_name_status_and_attributes_as_json(tmp_path):
    from opentelemetry.trace import Status, StatusCode

    telemetry = setup_telemetry("odd", Settings(data_dir=tmp_path), set_global=False)
    name = 'webhook "zen"\n\u00e9\u2603'
    with telemetry.tracer.start_as_current_span(name, attributes={"ids": ["a", "b"], "n": 1.5, "ok": True}) as span:
        span.set_status(Status(StatusCode.ERROR, 'broker said "no"'))
    with telemetry.tracer.start_as_current_span("plain"):
        pass
    telemetry.shutdown()
    spans = {s["name"]: s for s in read_span_file(tmp_path / "telemetry" / "odd.spans.jsonl")}
    odd, plain = spans[name], spans["plain"]
    assert odd["attributes"] == {"ids": ["a", "b"], "n": 1.5, "ok": True} and odd["events"] == []
    assert odd["status"] == {"status_code": "ERROR", "description": 'broker said "no"'}
    assert plain["status"] == {"status_code": "UNSET", "description": None} and plain["attributes"] == {}
    assert odd["kind"] == "INTERNAL" and odd["service"] == "clonedesk-odd" and odd["parent_id"] is None
    assert int(odd["context"]["span_id"], 16) != 0 and isinstance(odd["end_time_unix_nano"], int)
