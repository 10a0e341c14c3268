"""The conversation reducer on plain data: samples, resolve requests, outcomes, idempotency, order."""

from __future__ import annotations

import json

from clonedesk.core.domain import topics
from clonedesk.core.domain.confirmation import is_confirmation
from clonedesk.ingest.domain.conversation import Context, Conversation, apply
from clonedesk.ingest.domain import intercom
from clonedesk.ingest.domain.events import Kind, new_event
from clonedesk.v1 import common_pb2, outcomes_pb2, resolver_pb2
from tests.ingest import payloads as p

Outcome = outcomes_pb2.ResolutionOutcome.Kind
LIVE = Context(live=True)
T0 = 1_763_700_000


def ev(event_id, kind, role=common_pb2.ROLE_UNSPECIFIED, body="", at=0, source=common_pb2.ZENDESK, **fields):
    return new_event(event_id=event_id, tenant_id="acme", ticket_id="t1", source=source, kind=kind,
                     author_role=role, body=body, occurred_at=T0 + at, **fields)


def customer(event_id, body, at, **kw):
    return ev(event_id, Kind.MESSAGE, common_pb2.CUSTOMER, body, at, **kw)


def agent(event_id, body, at, **kw):
    return ev(event_id, Kind.MESSAGE, common_pb2.AGENT, body, at, **kw)


def status(event_id, value, at):
    return ev(event_id, Kind.STATUS_CHANGED, common_pb2.SYSTEM, at=at, status=value)


def run(events, context=Context(), state=None):
    emitted = []
    for event in events:
        state, emits = apply(state, event, context)
        emitted.extend(emits)
        state = Conversation.from_dict(json.loads(json.dumps(state.to_dict())))  # as the table stores it
    return state, emitted


def of(emits, topic):
    return [e.message for e in emits if e.topic == topic]


HUMAN_TICKET = [
    ev("e0", Kind.TICKET_CREATED, common_pb2.CUSTOMER, "I was charged twice, mail me at jo@example.com", 0,
       status=common_pb2.NEW),
    customer("e1", "I was charged twice, mail me at jo@example.com", 1),
    agent("e2", "Which order number was it?", 2),
    customer("e3", "Order 1138, card 4111 1111 1111 1111", 3),
    agent("e4", "Refunded the duplicate charge.", 4, decision=common_pb2.ACTION, action="Refund(order=1138)"),
    agent("e5", "internal: checked the ledger", 5, internal=True),
    status("e6", common_pb2.SOLVED, 6),
]


def test_a_ticket_solved_by_humans_yields_one_scrubbed_sample_per_agent_turn():
    state, emitted = run(HUMAN_TICKET)
    samples = of(emitted, topics.TRAINING_SAMPLES)
    assert [s.reply for s in samples] == ["Which order number was it?", "Refunded the duplicate charge."]
    first, second = samples
    assert [t.text for t in first.context] == ["I was charged twice, mail me at [EMAIL]"]
    assert (first.decision, second.decision, second.action) == (common_pb2.ASK, common_pb2.ACTION,
                                                                 "Refund(order=1138)")
    assert [t.role for t in second.context] == [common_pb2.CUSTOMER, common_pb2.AGENT, common_pb2.CUSTOMER]
    assert second.context[2].text == "Order 1138, card [CARD_NUMBER]"
    assert first.sample_id != second.sample_id and second.turn_index == 3
    assert of(emitted, topics.TICKETS_TO_RESOLVE) == [] and of(emitted, topics.RESOLUTION_OUTCOMES) == []


def test_a_human_turn_followed_by_a_hand_over_is_an_escalation():
    events = [customer("e1", "My invoice is wrong", 1),
              ev("e2", Kind.ASSIGNED, common_pb2.SYSTEM, at=2, assignee_id="agent-1"),
              agent("e3", "I'm passing this to our billing team.", 3, author_id="agent-1"),
              ev("e4", Kind.ASSIGNED, common_pb2.SYSTEM, at=4, assignee_id="group:billing"),
              agent("e5", "Billing here: corrected, sorry!", 5, author_id="agent-2"),
              status("e6", common_pb2.SOLVED, 6)]
    _, emitted = run(events)
    assert [s.decision for s in of(emitted, topics.TRAINING_SAMPLES)] == [common_pb2.ESCALATE, common_pb2.RESOLVE]


def test_every_event_redelivered_changes_nothing():
    state, emitted = run(HUMAN_TICKET)
    again, more = run(HUMAN_TICKET, state=state)
    assert more == [] and again.to_dict() == state.to_dict()


def test_a_repeated_solve_emits_only_new_turns():
    state, emitted = run(HUMAN_TICKET)
    state, more = run([status("r1", common_pb2.OPEN, 7), customer("r2", "One more question", 8),
                       agent("r3", "Sure, it's done.", 9), status("r4", common_pb2.SOLVED, 10)], state=state)
    assert [s.reply for s in of(more, topics.TRAINING_SAMPLES)] == ["Sure, it's done."]


def test_out_of_order_arrival_keeps_the_conversation_in_time_order():
    # Webhook retries arrive late: the turns come in any order before the solve.
    shuffled = [HUMAN_TICKET[i] for i in (4, 2, 0, 3, 1, 5, 6)]
    _, emitted = run(shuffled)
    samples = {s.reply: s for s in of(emitted, topics.TRAINING_SAMPLES)}
    assert set(samples) == {"Which order number was it?", "Refunded the duplicate charge."}
    assert len(samples["Refunded the duplicate charge."].context) == 3
    assert len(samples["Which order number was it?"].context) == 1


def test_an_agent_turn_arriving_after_the_solve_still_gets_its_sample_once():
    late_turn = HUMAN_TICKET[4]
    state, emitted = run([e for e in HUMAN_TICKET if e is not late_turn])
    assert len(of(emitted, topics.TRAINING_SAMPLES)) == 1
    state, more = run([late_turn, late_turn], state=state)
    assert [s.reply for s in of(more, topics.TRAINING_SAMPLES)] == ["Refunded the duplicate charge."]
    assert len(of(more, topics.TRAINING_SAMPLES)[0].context) == 3


def test_an_older_status_change_arriving_late_does_not_win():
    state, _ = run([status("s2", common_pb2.SOLVED, 20), status("s1", common_pb2.OPEN, 10)])
    assert state.status == common_pb2.SOLVED


def test_live_tenant_new_customer_message_requests_a_resolution_once():
    opening = [ev("e0", Kind.TICKET_CREATED, common_pb2.CUSTOMER, "Where is my parcel? call +14155551234", 0),
               customer("e1", "Where is my parcel? call +14155551234", 1)]
    _, emitted = run(opening, LIVE)
    requests = of(emitted, topics.TICKETS_TO_RESOLVE)
    assert len(requests) == 1
    assert requests[0].request_id == "e0" and requests[0].conversation[0].text == "Where is my parcel? call [PHONE]"
    _, not_live = run(opening, Context(live=False))
    assert of(not_live, topics.TICKETS_TO_RESOLVE) == []
    _, imported = run([customer("i1", "hello", 1, source=common_pb2.IMPORT)], LIVE)
    assert imported == []


def test_no_request_on_a_solved_ticket_or_for_a_late_old_message():
    state, _ = run([customer("e1", "hi", 1), agent("e2", "hello", 2), status("e3", common_pb2.SOLVED, 3)], LIVE)
    _, emitted = run([customer("e4", "again", 4)], LIVE, state)
    assert of(emitted, topics.TICKETS_TO_RESOLVE) == []
    state, _ = run([customer("a1", "first", 1), agent("a2", "answer", 5)], LIVE)
    _, late = run([customer("a0", "an older message", 2)], LIVE, state)
    assert of(late, topics.TICKETS_TO_RESOLVE) == []


def resolution(rid="res-1", reply="Your parcel is out for delivery.", decision=common_pb2.RESOLVE):
    return resolver_pb2.Resolution(resolution_id=rid, tenant_id="acme", ticket_id="t1", decision=decision,
                                   reply=reply)


def test_outcomes_of_an_ai_answered_ticket():
    state, _ = run([customer("e1", "Where is my parcel?", 1)], LIVE)
    state, emits = apply(state, resolution(), LIVE)
    assert emits == []
    events = [
        agent("e2", "Your parcel is out for delivery.", 2, author_id="api-user"),  # our reply, posted back
        customer("e3", "It still has not arrived?", 3),
        customer("e4", "Thanks, that worked!", 4),
        ev("e5", Kind.ASSIGNED, common_pb2.SYSTEM, at=5, assignee_id="900"),
        agent("e6", "Let me look too.", 6),
        status("e7", common_pb2.SOLVED, 7),
        status("e8", common_pb2.OPEN, 8),
        ev("e9", Kind.CSAT, common_pb2.CUSTOMER, at=9, csat_score=4),
    ]
    state, emitted = run(events, LIVE, state)
    outcomes = of(emitted, topics.RESOLUTION_OUTCOMES)
    assert [(o.event_id, o.kind) for o in outcomes] == [
        ("e3", Outcome.CUSTOMER_REPLIED), ("e4", Outcome.CUSTOMER_CONFIRMED), ("e5", Outcome.HUMAN_TOOK_OVER),
        ("e7", Outcome.SOLVED), ("e8", Outcome.REOPENED), ("e9", Outcome.CSAT)]
    assert all(o.resolution_id == "res-1" for o in outcomes) and outcomes[-1].csat_score == 4
    assert state.turns[1].role == common_pb2.AI
    # the AI answered: no training samples; after the human took over, no more resolve requests
    assert of(emitted, topics.TRAINING_SAMPLES) == []
    assert [r.request_id for r in of(emitted, topics.TICKETS_TO_RESOLVE)] == ["e3"]  # not for the thanks


def test_a_resolution_redelivered_or_escalated():
    state, _ = run([customer("e1", "help", 1)], LIVE)
    state, _ = apply(state, resolution(decision=common_pb2.ESCALATE, reply=""), LIVE)
    state, emits = apply(state, resolution(decision=common_pb2.ESCALATE, reply=""), LIVE)
    assert emits == [] and state.escalations == 1 and state.resolution is None
    _, emitted = run([agent("e2", "A human here.", 2)], LIVE, state)
    assert of(emitted, topics.RESOLUTION_OUTCOMES) == []


def test_ai_reply_arriving_before_its_resolution_is_recognised():
    state, _ = run([customer("e1", "help", 1), agent("e2", "Try turning it off and on.", 2)], LIVE)
    state, _ = apply(state, resolution(reply="Try turning it off and on."), LIVE)
    assert state.turns[1].role == common_pb2.AI
    _, emitted = run([status("e3", common_pb2.SOLVED, 3)], LIVE, state)
    assert of(emitted, topics.TRAINING_SAMPLES) == []
    assert [o.kind for o in of(emitted, topics.RESOLUTION_OUTCOMES)] == [Outcome.SOLVED]


def test_confirmation_detection():
    for text in ("Thanks, that worked!", "perfect, thank you", "It's fixed now, cheers", "all good"):
        assert is_confirmation(text), text
    for text in ("Thanks but it still fails", "That did not help", "thanks, can you also check my order?",
                 "I have another problem", "no"):
        assert not is_confirmation(text), text


def intercom_ticket(parts: list) -> tuple[list, list]:
    """The same Intercom conversation as its webhooks (one per part, user.created first) and as its export."""
    conversation = p.intercom_conversation("t1", parts)
    topic = {"comment": "conversation.admin.replied", "close": "conversation.admin.closed"}
    webhooks = [intercom.normalise_webhook("acme", p.intercom_notification(
        "conversation.user.created", p.intercom_conversation("t1"))).events]
    for part in parts:
        name = "conversation.user.replied" if part["author"]["type"] == "user" else topic[part["part_type"]]
        webhooks.append(intercom.normalise_webhook("acme", p.intercom_notification(
            name, p.intercom_conversation("t1", [part]))).events)
    export = intercom.normalise_export_conversation("acme", conversation)
    return [e for events in webhooks for e in events], export


def test_intercom_webhooks_and_export_give_the_same_samples():
    parts = [p.intercom_part("p1", "comment", "<p>What is the order number?</p>", created_at=1763719260),
             p.intercom_part("p2", "comment", "<p>It is 1138</p>", author_type="user", created_at=1763719320),
             p.intercom_part("p3", "comment", "<p>A new parcel ships today.</p>", created_at=1763719380),
             p.intercom_part("p4", "close", created_at=1763719440)]
    webhooks, export = intercom_ticket(parts)
    assert len(webhooks) == len(export) - 1  # the export's own MESSAGE for the first message
    samples = [[(s.reply, [(t.role, t.text) for t in s.context], s.decision, s.sample_id)
                for s in of(run(events)[1], topics.TRAINING_SAMPLES)] for events in (webhooks, export)]
    assert samples[0] == samples[1]
    assert [reply for reply, *_ in samples[0]] == ["What is the order number?", "A new parcel ships today."]
    assert samples[0][0][1] == [(common_pb2.CUSTOMER, "Hi, my parcel never arrived.")]


def test_intercom_user_created_alone_asks_for_one_resolution_and_its_later_message_adds_nothing():
    webhooks, export = intercom_ticket([])
    state, emitted = run(webhooks, LIVE)
    requests = of(emitted, topics.TICKETS_TO_RESOLVE)
    assert [[(t.role, t.text) for t in r.conversation] for r in requests] == [
        [(common_pb2.CUSTOMER, "Hi, my parcel never arrived.")]]
    # The same first message arriving again as a MESSAGE (a later history import) is merged, not a new turn.
    first_message = [e for e in export if e.kind == Kind.MESSAGE]
    state, more = run(first_message, LIVE, state)
    assert more == [] and len(state.public_turns()) == 1
