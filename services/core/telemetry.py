"""OpenTelemetry for every service: one call sets up traces and metrics, and two helpers carry the
trace context through Kafka record headers.

Default exporters write JSON lines under `<data>/telemetry/`; with `CLONEDESK_OTLP_ENDPOINT` set they
send OTLP/HTTP to that collector instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import Meter
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult, SpanProcessor
from opentelemetry.trace import Tracer

from clonedesk.core.settings import Settings

KafkaHeaders = list[tuple[str, bytes]]


@dataclass
class Telemetry:
    tracer: Tracer
    meter: Meter
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


_quoted = json.encoder.encode_basestring_ascii  # a str as json.dumps writes it


def _number(value: int | None) -> str:
    return "null" if value is None else str(value)


class SpanLines(SpanExporter):
    """Spans as JSON lines, one write per exported batch. OTel's console exporter (`span.to_json`) formats
    the resource, ISO times and indentation into every span and writes line by line: in the gateway that
    was a fifth of a webhook's cost (bench/ingest.py). The keys follow `to_json`'s, times in Unix ns.

    A line is formatted around its fixed keys, and only the values that need JSON (name, attributes,
    events, status text) go through the encoder: a nested dict per span through `json.dumps` cost the
    gateway's export thread 20 µs a webhook, with the GIL held."""

    # What json.dumps of the same dict writes, key for key (its default separators).
    _LINE = ('{"name": %s, "context": {"trace_id": "0x%032x", "span_id": "0x%016x"}, "parent_id": %s,'
             ' "kind": "%s", "start_time_unix_nano": %s, "end_time_unix_nano": %s,'
             ' "status": {"status_code": "%s", "description": %s}, "attributes": %s, "events": %s, "service": %s}')
    _encode = json.JSONEncoder(default=str).encode

    def __init__(self, out):
        self.out = out

    def export(self, spans) -> SpanExportResult:
        encode, lines, services = self._encode, [], {}
        for span in spans:
            context, parent, status = span.context, span.parent, span.status
            attributes, events, resource = span.attributes, span.events, span.resource
            service = services.get(id(resource))
            if service is None:  # one resource for a provider's spans: its name quoted once a batch
                service = services[id(resource)] = encode(resource.attributes.get("service.name"))
            lines.append(self._LINE % (
                _quoted(span.name), context.trace_id, context.span_id,
                f'"0x{parent.span_id:016x}"' if parent is not None else "null", span.kind.name,
                _number(span.start_time), _number(span.end_time), status.status_code.name,
                "null" if status.description is None else _quoted(status.description),
                encode(dict(attributes)) if attributes else "{}",
                encode([{"name": event.name, "timestamp_unix_nano": event.timestamp,
                         "attributes": dict(event.attributes or {})} for event in events]) if events else "[]",
                service))
        if lines:
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.out.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.out.flush()
        return True


def _file_exporters(directory: Path, service: str) -> tuple[SpanExporter, ConsoleMetricExporter]:
    directory.mkdir(parents=True, exist_ok=True)
    spans_out = open(directory / f"{service}.spans.jsonl", "a")  # noqa: SIM115 - lives as long as the exporter
    metrics_out = open(directory / f"{service}.metrics.jsonl", "a", buffering=1)  # noqa: SIM115
    spans = SpanLines(spans_out)
    metric_lines = ConsoleMetricExporter(out=metrics_out, formatter=lambda data: data.to_json(indent=None) + "\n")
    return spans, metric_lines


def setup_telemetry(
    service: str,
    settings: Settings | None = None,
    *,
    span_processors: Sequence[SpanProcessor] = (),
    metric_readers: Sequence[MetricReader] = (),
    set_global: bool = True,
) -> Telemetry:
    """Configure traces and metrics for `service`.

    Tests pass their own in-memory `span_processors` / `metric_readers`; otherwise the exporters follow
    the settings (OTLP endpoint, or files in the data dir).
    """
    settings = settings or Settings()
    resource = Resource.create({"service.name": f"clonedesk-{service}", "service.namespace": "clonedesk"})
    processors = list(span_processors)
    readers = list(metric_readers)
    if not processors and not readers:
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            base = settings.otlp_endpoint.rstrip("/")
            processors = [BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces"))]
            readers = [PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{base}/v1/metrics"))]
        else:
            span_exporter, metric_exporter = _file_exporters(settings.resolved_data_dir / "telemetry", service)
            processors = [BatchSpanProcessor(span_exporter)]
            readers = [PeriodicExportingMetricReader(metric_exporter, export_interval_millis=15000)]
    tracer_provider = TracerProvider(resource=resource)
    for processor in processors:
        tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    return Telemetry(
        tracer=tracer_provider.get_tracer(f"clonedesk.{service}"),
        meter=meter_provider.get_meter(f"clonedesk.{service}"),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )


class _HeaderSetter(Setter[KafkaHeaders]):
    def set(self, carrier: KafkaHeaders, key: str, value: str) -> None:
        carrier[:] = [(k, v) for k, v in carrier if k != key]
        carrier.append((key, value.encode()))


class _HeaderGetter(Getter[Iterable[tuple[str, bytes]]]):
    def get(self, carrier, key: str):
        values = [v.decode(errors="replace") for k, v in carrier or () if k == key and v is not None]
        return values or None

    def keys(self, carrier) -> list[str]:
        return [k for k, _ in carrier or ()]


def inject_headers(headers: KafkaHeaders | None = None, ctx: otel_context.Context | None = None) -> KafkaHeaders:
    """Kafka headers carrying the current (or given) trace context, W3C `traceparent` style."""
    carrier: KafkaHeaders = list(headers or [])
    propagate.inject(carrier, context=ctx, setter=_HeaderSetter())
    return carrier


def extract_context(headers: Iterable[tuple[str, bytes]] | None) -> otel_context.Context:
    """The trace context a producer put into a record's headers (an empty context if none)."""
    return propagate.extract(list(headers or ()), getter=_HeaderGetter())


def read_span_file(path: Path) -> list[dict]:
    """Parse a span file written by the default exporter (for tools and tests)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class ConsumerLag:
    """Consumer lag (the partition's high watermark minus the next offset to read), per topic and
    partition, as an observable gauge `clonedesk.kafka.consumer_lag`. Call `update` after each poll."""

    def __init__(self, group: str, meter: Meter | None = None):
        from opentelemetry.metrics import Observation

        self.group = group
        self.lag: dict[tuple[str, int], int] = {}
        self._observation = Observation
        (meter or metrics.get_meter("clonedesk.kafka")).create_observable_gauge(
            "clonedesk.kafka.consumer_lag", callbacks=[self._observe], unit="{record}",
            description="records not yet consumed, per topic partition")

    def update(self, consumer, batches: dict) -> None:
        for tp, records in batches.items():
            highwater = consumer.highwater(tp)
            if records and highwater is not None:
                self.lag[(tp.topic, tp.partition)] = max(0, highwater - records[-1].offset - 1)

    def _observe(self, _options):
        for (topic, partition), lag in list(self.lag.items()):
            yield self._observation(lag, {"topic": topic, "partition": partition, "group": self.group})


class TallyCounter:
    """A monotonic counter whose hot path is a dict increment: the totals per attribute set are observed
    when the metric reader collects (an asynchronous counter), instead of an SDK measurement per `add` (in
    the gateway two synchronous counters cost a tenth of a webhook)."""

    def __init__(self, meter: Meter, name: str, description: str = ""):
        from opentelemetry.metrics import Observation

        self._observation = Observation
        self.totals: dict[tuple[tuple[str, str], ...], int] = {}
        meter.create_observable_counter(name, callbacks=[self._observe], description=description)

    def add(self, amount: int, attributes: dict[str, str]) -> None:
        key = tuple(attributes.items())
        self.totals[key] = self.totals.get(key, 0) + amount

    def _observe(self, _options):
        return [self._observation(total, dict(key)) for key, total in list(self.totals.items())]
