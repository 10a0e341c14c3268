"""The contracts: generated code is fresh, and every message has the fields ARCHITECTURE.md promises."""

import filecmp

import pytest

from clonedesk.core.protogen import GENERATED, generate
from clonedesk.v1 import adapters_pb2, common_pb2, events_pb2, outbound_pb2, outcomes_pb2, resolver_pb2, training_pb2


def test_generated_code_is_fresh(tmp_path):
    written = generate(tmp_path)
    fresh = sorted(p.name for p in written)
    committed = sorted(p.name for p in GENERATED.iterdir() if p.suffix in {".py", ".pyi"})
    assert fresh == committed, "run `make protos`: generated files differ from protos/"
    for name in fresh:
        assert filecmp.cmp(tmp_path / name, GENERATED / name, shallow=False), f"{name} is stale: run `make protos`"


PROMISED = {
    events_pb2.HelpdeskEvent: "event_id tenant_id ticket_id source kind author_role body status csat_score category occurred_at",
    resolver_pb2.Resolution: "resolution_id tenant_id ticket_id decision reply adapter_version created_at latency_ms",
    outcomes_pb2.ResolutionOutcome: "event_id resolution_id tenant_id ticket_id kind csat_score occurred_at",
    adapters_pb2.AdapterPublished: "tenant_id version path metrics",
    resolver_pb2.ResolveRequest: "tenant_id ticket_id conversation",
    resolver_pb2.ResolveResponse: "resolution_id tenant_id reply decision action confidence adapter_version",
    common_pb2.Turn: "role text",
    training_pb2.TrainingSample: "sample_id tenant_id ticket_id context reply decision",
    outbound_pb2.OutboundReply: "reply_id resolution_id tenant_id ticket_id body",
}


@pytest.mark.parametrize("message", PROMISED, ids=lambda m: m.DESCRIPTOR.name)
def test_promised_fields_exist(message):
    assert set(PROMISED[message].split()) <= set(message.DESCRIPTOR.fields_by_name)


def test_promised_enum_values():
    assert {"ZENDESK", "INTERCOM", "IMPORT"} <= set(common_pb2.Source.keys())
    assert {"TICKET_CREATED", "MESSAGE", "STATUS_CHANGED", "ASSIGNED", "CSAT"} <= set(events_pb2.HelpdeskEvent.Kind.keys())
    assert {"CUSTOMER", "AGENT", "AI", "SYSTEM"} <= set(common_pb2.Role.keys())
    assert {"RESOLVE", "ASK", "ACTION", "ESCALATE"} <= set(common_pb2.Decision.keys())
    assert {"CUSTOMER_CONFIRMED", "CUSTOMER_REPLIED", "HUMAN_TOOK_OVER", "SOLVED", "REOPENED", "CSAT"} <= set(
        outcomes_pb2.ResolutionOutcome.Kind.keys())


def test_grpc_service_is_clonedesk_v1_resolver():
    service = resolver_pb2.DESCRIPTOR.services_by_name["Resolver"]
    assert service.full_name == "clonedesk.v1.Resolver"
    method = service.methods_by_name["Resolve"]
    assert method.input_type.full_name == "clonedesk.v1.ResolveRequest"
    assert method.output_type.full_name == "clonedesk.v1.ResolveResponse"
