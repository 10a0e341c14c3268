"""The resolution lifecycle on plain data: every path, in event time."""

from datetime import datetime, timedelta, timezone

from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeKind
from clonedesk.metering.domain.lifecycle import State, knowledge_version, settle
from clonedesk.metering.domain.terms import Terms

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=timezone.utc)
TERMS = Terms()


def reply(decision="resolve", at=T0, rid="r1"):
    return AiReply(resolution_id=rid, tenant_id="acme", ticket_id="t1", decision=decision, created_at=at,
                   latency_ms=120, category="billing")


def outcome(kind, after, event_id=None, score=0, rid="r1"):
    return Outcome(event_id=event_id or f"e-{kind.value}-{after}", resolution_id=rid, tenant_id="acme",
                   ticket_id="t1", kind=kind, occurred_at=T0 + after, csat_score=score)


def test_a_fresh_reply_is_pending_until_the_window_closes():
    life = settle(reply(), [], TERMS, watermark=T0 + timedelta(hours=23))
    assert life.state is State.PENDING and life.billed_at is None


def test_confirmation_confirms_and_bills_at_its_event_time():
    confirm = outcome(OutcomeKind.CUSTOMER_CONFIRMED, timedelta(minutes=30), "c1")
    life = settle(reply(), [confirm], TERMS, watermark=T0 + timedelta(minutes=30))
    assert life.state is State.CONFIRMED
    assert life.billed_at == T0 + timedelta(minutes=30) and life.decided_by == "c1"


def test_positive_rating_confirms_and_a_bad_one_blocks_the_assumption():
    later = T0 + timedelta(days=3)
    good = settle(reply(), [outcome(OutcomeKind.CSAT, timedelta(hours=1), score=5)], TERMS, later)
    assert good.state is State.CONFIRMED and good.csat_score == 5
    bad = settle(reply(), [outcome(OutcomeKind.CSAT, timedelta(hours=1), score=2)], TERMS, later)
    assert bad.state is State.PENDING and bad.csat_score == 2 and not bad.billed


def test_quiet_window_is_assumed_at_the_windows_end_by_watermark_not_clock():
    solved = outcome(OutcomeKind.SOLVED, timedelta(hours=2))
    early = settle(reply(), [solved], TERMS, watermark=T0 + timedelta(hours=5))
    assert early.state is State.PENDING
    late = settle(reply(), [solved], TERMS, watermark=T0 + timedelta(hours=24))
    assert late.state is State.ASSUMED and late.billed_at == T0 + timedelta(hours=24)


def test_assumed_is_not_billed_when_the_plan_excludes_it():
    life = settle(reply(), [], Terms(bill_assumed=False), watermark=T0 + timedelta(days=2))
    assert life.state is State.ASSUMED and not life.billed


def test_the_window_comes_from_the_plan():
    terms = Terms(assumed_window=timedelta(hours=2))
    assert settle(reply(), [], terms, watermark=T0 + timedelta(hours=2)).state is State.ASSUMED
    assert settle(reply(), [], TERMS, watermark=T0 + timedelta(hours=2)).state is State.PENDING


def test_customer_return_within_the_window_prevents_assumption_but_not_confirmation():
    back = outcome(OutcomeKind.CUSTOMER_REPLIED, timedelta(hours=3))
    assert settle(reply(), [back], TERMS, T0 + timedelta(days=5)).state is State.PENDING
    thanks = outcome(OutcomeKind.CUSTOMER_CONFIRMED, timedelta(hours=4))
    assert settle(reply(), [back, thanks], TERMS, T0 + timedelta(days=5)).state is State.CONFIRMED


def test_human_take_over_escalates_and_is_never_billed():
    life = settle(reply(), [outcome(OutcomeKind.HUMAN_TOOK_OVER, timedelta(hours=1), "h1"),
                            outcome(OutcomeKind.CUSTOMER_CONFIRMED, timedelta(hours=2))], TERMS,
                  T0 + timedelta(days=9))
    assert life.state is State.ESCALATED and not life.billed and life.decided_by == "h1"


def test_ai_escalation_is_escalated_at_once():
    life = settle(reply("escalate"), [outcome(OutcomeKind.CSAT, timedelta(hours=1), score=5)], TERMS,
                  T0 + timedelta(days=9))
    assert life.state is State.ESCALATED and not life.billed


def test_reopen_within_the_window_reverses_and_keeps_the_charge_time():
    events = [outcome(OutcomeKind.CUSTOMER_CONFIRMED, timedelta(hours=1)),
              outcome(OutcomeKind.REOPENED, timedelta(days=3), "re1")]
    life = settle(reply(), events, TERMS, T0 + timedelta(days=3))
    assert life.state is State.REOPENED
    assert life.billed_at == T0 + timedelta(hours=1) and life.reopened_at == T0 + timedelta(days=3)


def test_reopen_after_the_window_is_a_new_issue():
    events = [outcome(OutcomeKind.CUSTOMER_CONFIRMED, timedelta(hours=1)),
              outcome(OutcomeKind.REOPENED, timedelta(days=8))]
    assert settle(reply(), events, TERMS, T0 + timedelta(days=8)).state is State.CONFIRMED


def test_customer_coming_back_after_an_assumption_reopens_it():
    back = outcome(OutcomeKind.CUSTOMER_REPLIED, timedelta(days=2))
    life = settle(reply(), [back], TERMS, T0 + timedelta(days=2))
    assert life.state is State.REOPENED and life.billed_at == T0 + timedelta(hours=24)
    # a confirmed one is only reopened by an explicit reopen
    confirmed = settle(reply(), [outcome(OutcomeKind.CUSTOMER_CONFIRMED, timedelta(hours=1)), back], TERMS,
                       T0 + timedelta(days=2))
    assert confirmed.state is State.CONFIRMED


def test_order_of_arrival_does_not_matter_and_outcomes_may_come_first():
    events = [outcome(OutcomeKind.REOPENED, timedelta(days=1)),
              outcome(OutcomeKind.CUSTOMER_CONFIRMED, timedelta(hours=1))]
    assert settle(None, events, TERMS, T0) is None
    a = settle(reply(), events, TERMS, T0 + timedelta(days=1))
    b = settle(reply(), list(reversed(events)), TERMS, T0 + timedelta(days=1))
    assert a == b and a.state is State.REOPENED


def test_other_resolutions_events_are_ignored():
    other = outcome(OutcomeKind.CUSTOMER_CONFIRMED, timedelta(hours=1), rid="r2")
    assert settle(reply(), [other], TERMS, T0 + timedelta(hours=2)).state is State.PENDING


def test_knowledge_version_grows_with_watermark_then_events():
    a_millisecond_later = T0 + timedelta(milliseconds=1)
    assert knowledge_version(T0, 5) < knowledge_version(T0, 6) < knowledge_version(a_millisecond_later, 1)


def test_a_question_is_never_assumed_but_can_be_confirmed():
    solved = outcome(OutcomeKind.SOLVED, timedelta(hours=1))
    quiet = settle(reply("ask"), [solved], TERMS, T0 + timedelta(days=5))
    assert quiet.state is State.PENDING and quiet.assumable_at is None and not quiet.billed
    thanks = settle(reply("ask"), [outcome(OutcomeKind.CUSTOMER_CONFIRMED, timedelta(hours=2))], TERMS,
                    T0 + timedelta(days=5))
    assert thanks.state is State.CONFIRMED and thanks.billed
    action = settle(reply("action"), [], TERMS, T0 + timedelta(days=5))
    assert action.state is State.ASSUMED
