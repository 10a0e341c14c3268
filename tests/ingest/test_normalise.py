import pytest

from clonedesk.ingest.domain import intercom, zendesk
from clonedesk.ingest.domain.events import Kind, WrongShape
from clonedesk.v1 import common_pb2
from tests.ingest import payloads as p


def only(normalised):
    assert normalised.ignored is None and len(normalised.events) == 1
    return normalised.events[0]


def test_zendesk_ticket_created():
    event = only(zendesk.normalise_webhook("acme", p.zendesk_created("35436")))
    assert (event.kind, event.ticket_id, event.tenant_id) == (Kind.TICKET_CREATED, "35436", "acme")
    assert event.body.startswith("My card was charged twice") and event.status == common_pb2.NEW
    assert event.source == common_pb2.ZENDESK and event.category == "billing"
    assert event.occurred_at.ToJsonString() == "2026-11-21T10:00:00Z"


@pytest.mark.parametrize("staff,public,author,role", [
    (False, True, None, common_pb2.CUSTOMER), (True, True, None, common_pb2.AGENT),
    (True, False, None, common_pb2.AGENT), (True, True, "clonedesk-ai", common_pb2.AI),
])
def test_zendesk_comments_public_internal_and_ai(staff, public, author, role):
    event = only(zendesk.normalise_webhook("acme", p.zendesk_comment("1", "c1", "hello", staff=staff,
                                                                        public=public, author_id=author)))
    assert (event.kind, event.author_role, event.internal, event.body) == (Kind.MESSAGE, role, not public, "hello")


def test_zendesk_status_changes_including_solved_and_reopened():
    solved = only(zendesk.normalise_webhook("acme", p.zendesk_status("1", "s1", "OPEN", "SOLVED")))
    reopened = only(zendesk.normalise_webhook("acme", p.zendesk_status("1", "s2", "SOLVED", "OPEN")))
    assert (solved.status, solved.previous_status) == (common_pb2.SOLVED, common_pb2.OPEN)
    assert (reopened.status, reopened.previous_status) == (common_pb2.OPEN, common_pb2.SOLVED)
    assert solved.event_id != reopened.event_id


def test_zendesk_assignment_and_group_change_and_rating():
    assigned = only(zendesk.normalise_webhook("acme", p.zendesk_assigned("1", "a1", "900")))
    assert (assigned.kind, assigned.assignee_id) == (Kind.ASSIGNED, "900")
    group = p.zendesk_event("ticket.group_assignment_changed", "1", {"current": {"id": "77"}}, "g1")
    assert only(zendesk.normalise_webhook("acme", group)).assignee_id == "group:77"
    assert only(zendesk.normalise_webhook("acme", p.zendesk_rating("1", "r1", "good"))).csat_score == 5
    assert only(zendesk.normalise_webhook("acme", p.zendesk_rating("1", "r2", 3))).csat_score == 3


def test_zendesk_satisfaction_trigger_body_is_one_csat_event():
    body = p.zendesk_trigger_rating("35436", "Bad, I'm unsatisfied", "Took a week", "2026-11-21T10:09Z")
    event = only(zendesk.normalise_webhook("acme", body))
    assert (event.kind, event.ticket_id, event.csat_score, event.body) == (Kind.CSAT, "35436", 1, "Took a week")
    assert (event.source, event.author_role) == (common_pb2.ZENDESK, common_pb2.CUSTOMER)
    assert event.occurred_at.ToJsonString() == "2026-11-21T10:09:00Z"
    # A redelivery of the same body is the same event; a changed rating is a new one.
    assert only(zendesk.normalise_webhook("acme", dict(body))).event_id == event.event_id
    good = p.zendesk_trigger_rating("35436", "good", "Took a week", "2026-11-21T10:12Z")
    assert only(zendesk.normalise_webhook("acme", good)).event_id != event.event_id
    assert only(zendesk.normalise_webhook("other", body)).event_id != event.event_id


@pytest.mark.parametrize("rating,score", [("Good, I'm satisfied", 5), ("good", 5), ("Bad", 1),
                                          ("bad_with_comment", 1), ("4", 4), (2, 2)])
def test_zendesk_satisfaction_trigger_ratings(rating, score):
    body = p.zendesk_trigger_rating(35436, rating)
    assert only(zendesk.normalise_webhook("acme", body)).csat_score == score


@pytest.mark.parametrize("changes", [{"ticket_id": "{{ticket.id}}"}, {"ticket_id": ""}, {"ticket_id": {"id": 1}},
                                     {"rating": "Offered"}, {"rating": 9}, {"rating": None},
                                     {"rated_at": "December 12, 2013"}])
def test_zendesk_satisfaction_trigger_wrong_shapes(changes):
    with pytest.raises(WrongShape):
        zendesk.normalise_webhook("acme", {**p.zendesk_trigger_rating("35436", "good"), **changes})


def test_redelivery_keeps_the_event_id_and_different_comments_differ():
    first = only(zendesk.normalise_webhook("acme", p.zendesk_comment("1", "c1", "x", staff=False)))
    again = only(zendesk.normalise_webhook("acme", p.zendesk_comment("1", "c1", "x", staff=False)))
    other = only(zendesk.normalise_webhook("acme", p.zendesk_comment("1", "c2", "x", staff=False)))
    assert first.event_id == again.event_id != other.event_id


def test_zendesk_unknown_valid_type_is_ignored_not_an_error():
    result = zendesk.normalise_webhook("acme", p.zendesk_event("ticket.priority_changed", "1",
                                                               {"current": "HIGH"}, "x"))
    assert result.ignored == "ticket.priority_changed" and result.events == []


@pytest.mark.parametrize("payload", [
    [], {"type": "something"}, {"type": "zen:event-type:ticket.created", "id": "1"},
    p.zendesk_event("ticket.comment_added", "1", {}, "x"),
    p.zendesk_status("1", "s", "OPEN", "EXPLODED"),
])
def test_zendesk_wrong_shapes(payload):
    with pytest.raises(WrongShape):
        zendesk.normalise_webhook("acme", payload)


def test_intercom_user_created_is_one_event_carrying_the_first_message():
    created = only(intercom.normalise_webhook("acme", p.intercom_notification(
        "conversation.user.created", p.intercom_conversation("777"))))
    assert (created.kind, created.author_role, created.status) == (Kind.TICKET_CREATED, common_pb2.CUSTOMER,
                                                                    common_pb2.OPEN)
    assert created.body == "Hi, my parcel never arrived." and created.author_id == "5310d8e7598c9a0b24000002"
    # The export lists the first message as a part of its own too; the created event is the same one.
    exported = intercom.normalise_export_conversation("acme", p.intercom_conversation("777"))
    assert [e.kind for e in exported] == [Kind.TICKET_CREATED, Kind.MESSAGE]
    assert exported[0].event_id == created.event_id and exported[1].body == created.body


@pytest.mark.parametrize("topic,part,kind,role,status", [
    ("conversation.user.replied", p.intercom_part("p1", "comment", "<p>Still waiting</p>", author_type="user"),
     Kind.MESSAGE, common_pb2.CUSTOMER, 0),
    ("conversation.admin.replied", p.intercom_part("p2", "comment", "<p>Sent again.</p>"), Kind.MESSAGE,
     common_pb2.AGENT, 0),
    ("conversation.admin.replied", p.intercom_part("p2b", "comment", "<p>Auto</p>", author_id="clonedesk-ai"),
     Kind.MESSAGE, common_pb2.AI, 0),
    ("conversation.admin.assigned", p.intercom_part("p3", "assignment", assigned_to={"type": "admin", "id": "42"}),
     Kind.ASSIGNED, common_pb2.SYSTEM, 0),
    ("conversation.admin.closed", p.intercom_part("p4", "close"), Kind.STATUS_CHANGED, common_pb2.SYSTEM,
     common_pb2.SOLVED),
    ("conversation.admin.opened", p.intercom_part("p5", "open"), Kind.STATUS_CHANGED, common_pb2.SYSTEM,
     common_pb2.OPEN),
])
def test_intercom_topics(topic, part, kind, role, status):
    event = only(intercom.normalise_webhook("acme", p.intercom_notification(
        topic, p.intercom_conversation("777", [part]))))
    assert (event.kind, event.author_role, event.status, event.source) == (kind, role, status, common_pb2.INTERCOM)
    assert event.ticket_id == "777"


def test_intercom_rating_and_note_and_html():
    rated = only(intercom.normalise_webhook("acme", p.intercom_notification(
        "conversation.rating.added", p.intercom_conversation("9", rating={"rating": 4, "remark": "ok",
                                                                           "created_at": 1763719999}))))
    assert (rated.kind, rated.csat_score) == (Kind.CSAT, 4)
    note = only(intercom.normalise_webhook("acme", p.intercom_notification(
        "conversation.admin.replied", p.intercom_conversation("9", [p.intercom_part(
            "n1", "note", "<p>Refund &amp; reship</p>")]))))
    assert note.internal and note.body == "Refund & reship"


def test_intercom_unknown_topic_ignored_and_wrong_shapes_refused():
    assert intercom.normalise_webhook("acme", p.intercom_notification(
        "contact.created", {"type": "contact"})).ignored == "contact.created"
    with pytest.raises(WrongShape):
        intercom.normalise_webhook("acme", {"type": "notification_event", "topic": "conversation.user.replied",
                                            "data": {"item": p.intercom_conversation("1", [])}})
    with pytest.raises(WrongShape):
        intercom.normalise_webhook("acme", {"topic": "conversation.user.replied"})


def test_intercom_export_matches_the_webhook_ids():
    parts = [p.intercom_part("p1", "comment", "<p>Resent it</p>"),
             p.intercom_part("p2", "comment", "<p>Thanks!</p>", author_type="user", created_at=1763719300),
             p.intercom_part("p3", "close", created_at=1763719400)]
    exported = intercom.normalise_export_conversation("acme", p.intercom_conversation("5", parts))
    webhook = intercom.normalise_webhook("acme", p.intercom_notification(
        "conversation.admin.replied", p.intercom_conversation("5", parts[:1]))).events[0]
    assert webhook.event_id in {e.event_id for e in exported}
    assert [e.kind for e in exported] == [Kind.TICKET_CREATED, Kind.MESSAGE, Kind.MESSAGE, Kind.MESSAGE,
                                          Kind.STATUS_CHANGED]
    assert all(e.source == common_pb2.IMPORT for e in exported)


def test_zendesk_export_with_comments_and_audits():
    ticket = {"id": 81, "requester_id": 1, "subject": "Refund", "description": "Please refund me",
              "created_at": "2026-01-02T10:00:00Z", "updated_at": "2026-01-02T11:00:00Z", "status": "closed",
              "tags": ["refunds"], "satisfaction_rating": {"id": 5, "score": "good"},
              "comments": [{"id": 11, "author_id": 1, "body": "Please refund me", "public": True,
                            "created_at": "2026-01-02T10:00:00Z"},
                           {"id": 12, "author_id": 2, "body": "Done, refunded.", "public": True,
                            "created_at": "2026-01-02T10:30:00Z"}],
              "audits": [{"id": 99, "author_id": 2, "created_at": "2026-01-02T10:31:00Z",
                          "events": [{"id": 100, "type": "Change", "field_name": "status", "value": "solved",
                                      "previous_value": "open"}]}]}
    events = zendesk.normalise_export_ticket("acme", ticket)
    kinds = [e.kind for e in events]
    assert kinds == [Kind.TICKET_CREATED, Kind.MESSAGE, Kind.MESSAGE, Kind.STATUS_CHANGED, Kind.CSAT]
    assert [e.author_role for e in events[1:3]] == [common_pb2.CUSTOMER, common_pb2.AGENT]
    assert events[3].status == common_pb2.SOLVED and events[4].csat_score == 5
    assert events[0].category == "refunds"


@pytest.mark.parametrize("value", [10**30, 1e30, -1e30, "9999-12-31T23:59:59Z", "1999-12-31T23:59:59Z", 0,
                                   True, ["2026-11-21"], "x" * 100, "2026-13-01T00:00:00Z"])
def test_a_time_no_helpdesk_sends_is_refused(value):
    from clonedesk.core.domain.ids import parse_time

    with pytest.raises(ValueError):
        parse_time(value)


def test_times_in_range_read_as_utc():
    from datetime import datetime, timezone

    from clonedesk.core.domain.ids import parse_time

    assert parse_time(1763719200) == datetime(2025, 11, 21, 10, 0, tzinfo=timezone.utc)
    assert parse_time("2026-11-21T10:00:00Z") == datetime(2026, 11, 21, 10, tzinfo=timezone.utc)
    assert parse_time(None) is None and parse_time("") is None


@pytest.mark.parametrize("value", ["2026-11-21T10:00:00.123456+05:30", "2000-01-01T00:00:00Z", 1763719200.5,
                                   "2199-12-31T23:59:59.999999+11:00", "2024-02-29T12:00:00"])
def test_a_time_becomes_the_same_protobuf_timestamp_as_the_library_makes(value):
    from datetime import timezone

    from google.protobuf.timestamp_pb2 import Timestamp

    from clonedesk.core.domain.ids import parse_time, timestamp

    expected = Timestamp()
    expected.FromDatetime(parse_time(value).astimezone(timezone.utc))
    assert timestamp(value) == expected and timestamp(parse_time(value)) == expected
    assert timestamp(None) == Timestamp()


def test_payloads_too_deep_or_not_finite_are_not_webhooks():
    from clonedesk.ingest.domain.events import MAX_JSON_DEPTH, payload_problem

    deep = "x"
    for _ in range(MAX_JSON_DEPTH):
        deep = {"a": deep}
    assert payload_problem(deep) == ""
    assert "deeper than" in payload_problem({"wrapper": deep})
    assert "deeper than" in payload_problem([deep])
    assert "not finite" in payload_problem({"time": float("nan")})
    assert payload_problem({"time": 1.5, "tags": ["a", {"b": None}]}) == ""
