from clonedesk.core.domain import topics
from clonedesk.core.adapters import adapter_name, current_version, parse_adapter_name, set_current_version
from clonedesk.core.domain.conversation_format import chat_messages, format_target, parse_target
from clonedesk.v1 import common_pb2


def test_topic_names_are_the_public_ones():
    assert topics.MAIN_TOPICS == (
        "helpdesk.events", "tickets.to_resolve", "training.samples", "adapters.published", "resolutions",
        "resolution.outcomes", "helpdesk.outbound",
    )
    assert topics.dlq("helpdesk.events") == "helpdesk.events.dlq"
    specs = {s.name: s.partitions for s in topics.all_topic_specs(4)}
    assert len(specs) == 14
    assert specs["helpdesk.events"] == 4 and specs["adapters.published"] == 1 and specs["resolutions.dlq"] == 1
    assert topics.message_key("acme", "42") == b"acme:42"


def test_target_round_trip_for_every_decision():
    for decision in (common_pb2.RESOLVE, common_pb2.ASK, common_pb2.ACTION, common_pb2.ESCALATE):
        text = format_target(decision, "Book(city=Paris)" if decision == common_pb2.ACTION else "", " Done. \n")
        parsed = parse_target(text)
        assert (parsed.decision, parsed.reply) == (decision, "Done.")
        assert parsed.action == ("Book(city=Paris)" if decision == common_pb2.ACTION else "")


def test_uninterpretable_output_escalates():
    assert parse_target("Sure, here you go").decision == common_pb2.ESCALATE
    assert parse_target("[decision=MAYBE]\nhi").decision == common_pb2.ESCALATE


def test_chat_messages_map_roles_and_drop_system_turns():
    turns = [common_pb2.Turn(role=common_pb2.CUSTOMER, text="hi"), common_pb2.Turn(role=common_pb2.SYSTEM, text="x"),
             common_pb2.Turn(role=common_pb2.AGENT, text="hello"), common_pb2.Turn(role=common_pb2.AI, text="ok")]
    assert chat_messages(turns, "be kind") == [
        {"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"}, {"role": "assistant", "content": "ok"},
    ]


def test_adapter_registry_current_switches_atomically(tmp_path):
    assert adapter_name("acme", 3) == "acme@v3" and parse_adapter_name("acme@v3") == ("acme", 3)
    assert current_version(tmp_path, "acme") is None
    for version in (1, 2):
        (tmp_path / "adapters" / "acme" / f"v{version}").mkdir(parents=True)
    set_current_version(tmp_path, "acme", 1)
    assert current_version(tmp_path, "acme") == 1
    set_current_version(tmp_path, "acme", 2)
    assert current_version(tmp_path, "acme") == 2
    assert sorted(p.name for p in (tmp_path / "adapters" / "acme").iterdir()) == ["current", "v1", "v2"]
