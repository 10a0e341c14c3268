"""Invoices on plain lifecycles: Decimal money, the free tier per UTC month, reversal credits."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from clonedesk.core.tenants import Plan
from clonedesk.metering.domain.billing import Month, compute_invoice
from clonedesk.metering.domain.lifecycle import Lifecycle, State
from clonedesk.metering.domain.terms import Terms

TERMS = Terms()


def charge(n, billed_at, state=State.CONFIRMED, reopened_at=None, tenant="acme"):
    return Lifecycle(resolution_id=f"r{n:05d}", tenant_id=tenant, ticket_id=f"t{n}", created_at=billed_at,
                     state=state, state_at=reopened_at or billed_at, billed_at=billed_at,
                     reopened_at=reopened_at)


def oct_(day, minute=0):
    return datetime(2026, 10, day, 12, minute, tzinfo=timezone.utc)


def test_month_parsing_and_bounds():
    month = Month.parse("2026-12")
    assert month.start == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert month.end == datetime(2027, 1, 1, tzinfo=timezone.utc) and str(month.next()) == "2027-01"
    for bad in ("2026-13", "2026-1", "26-01", "", "2026-00", "2026-01-01", "0000-01", "9999-12"):
        with pytest.raises(ValueError):
            Month.parse(bad)


def test_terms_from_plan_are_decimal():
    terms = Terms.from_plan(Plan(unit_price_usd="1.25", free_units=3, bill_assumed=False))
    assert terms.unit_price == Decimal("1.25") and terms.free_units == 3 and not terms.bill_assumed
    with pytest.raises(TypeError):
        Terms(unit_price=0.99)


def test_first_hundred_are_free_then_ninety_nine_cents_each():
    lives = [charge(i, oct_(1 + i // 60, i % 60)) for i in range(130)]
    invoice = compute_invoice("acme", Month(2026, 10), lives, TERMS)
    body = invoice.to_json()
    assert body["billable_units"] == 130 and body["free_units"] == 100 and body["charged_units"] == 30
    assert body["total_usd"] == "29.70" and body["unit_price_usd"] == "0.99"
    assert isinstance(invoice.total, Decimal) and invoice.free_units_left == 0


def test_free_tier_restarts_each_utc_month_in_event_time_order():
    # 90 on Oct 31 late evening (UTC), 30 on Nov 1 just after midnight UTC
    oct_evening = datetime(2026, 10, 31, 23, 0, tzinfo=timezone.utc)
    nov_midnight = datetime(2026, 11, 1, 0, 0, tzinfo=timezone.utc)
    late_oct = [charge(i, oct_evening + timedelta(seconds=i)) for i in range(90)]
    early_nov = [charge(100 + i, nov_midnight + timedelta(seconds=i)) for i in range(30)]
    lives = late_oct + early_nov
    october = compute_invoice("acme", Month(2026, 10), lives, TERMS)
    november = compute_invoice("acme", Month(2026, 11), lives, TERMS)
    assert (october.billable_units, october.charged_units, october.free_units_left) == (90, 0, 10)
    assert (november.billable_units, november.free_units, november.total) == (30, 30, Decimal("0.00"))


def test_reopened_next_month_stays_charged_and_is_credited_there():
    lives = [charge(i, oct_(2, i % 60) + timedelta(hours=i // 60)) for i in range(105)]
    # the last one (paid: it is the 105th) and the first one (free) reopen on Nov 3
    reopen = datetime(2026, 11, 3, tzinfo=timezone.utc)
    lives[104] = charge(104, lives[104].billed_at, State.REOPENED, reopened_at=reopen)
    lives[0] = charge(0, lives[0].billed_at, State.REOPENED, reopened_at=reopen)
    october = compute_invoice("acme", Month(2026, 10), lives, TERMS).to_json()
    november = compute_invoice("acme", Month(2026, 11), lives, TERMS).to_json()
    assert october["charged_units"] == 5 and october["total_usd"] == "4.95"
    assert october["resolutions"]["reopened"] == 2 and october["resolutions"]["confirmed"] == 103
    # only the paid one is credited: the free one cost nothing
    assert november["credit_units"] == 1 and november["credits_usd"] == "0.99"
    assert november["total_usd"] == "-0.99" and november["billable_units"] == 0


def test_reopened_in_the_same_month_is_never_charged_and_frees_its_slot():
    lives = [charge(i, oct_(2, i % 60) + timedelta(hours=i // 60)) for i in range(101)]
    lives[3] = charge(3, lives[3].billed_at, State.REOPENED, reopened_at=oct_(9))
    invoice = compute_invoice("acme", Month(2026, 10), lives, TERMS)
    assert (invoice.billable_units, invoice.charged_units, invoice.credit_units) == (100, 0, 0)
    assert invoice.total == Decimal("0")


def test_unbilled_states_and_other_tenants_do_not_count():
    pending = Lifecycle("p1", "acme", "t", oct_(3), State.PENDING, oct_(3))
    escalated = Lifecycle("e1", "acme", "t", oct_(3), State.ESCALATED, oct_(3))
    foreign = charge(7, oct_(3), tenant="other")
    invoice = compute_invoice("acme", Month(2026, 10), [pending, escalated, foreign], Terms(free_units=0))
    assert invoice.billable_units == 0 and invoice.total == Decimal("0")
    assert invoice.resolutions[State.PENDING] == 1 and invoice.resolutions[State.ESCALATED] == 1


def test_amounts_for_people():
    from clonedesk.metering.domain.billing import usd

    assert (usd(Decimal("4.95")), usd(Decimal("-0.99")), usd("0"), usd(Decimal("-0"))) == \
        ("$4.95", "-$0.99", "$0.00", "$0.00")


def test_plan_price_and_allowance_apply():
    lives = [charge(i, oct_(4, i)) for i in range(5)]
    invoice = compute_invoice("acme", Month(2026, 10), lives, Terms(unit_price=Decimal("1.10"), free_units=2))
    assert invoice.to_json()["total_usd"] == "3.30"


def test_rates_leave_pending_out():
    from clonedesk.metering.domain.analytics import escalation_rate, resolution_rate

    counts = {"pending": 10, "confirmed": 3, "assumed": 3, "escalated": 2, "reopened": 2}
    assert resolution_rate(counts) == 0.6 and escalation_rate(counts) == 0.2
    assert resolution_rate({"pending": 4}) is None


def test_terms_from_plan_convert_the_windows_hours_and_days():
    assert Terms.from_plan(Plan()) == Terms()
    terms = Terms.from_plan(Plan(assumed_window_hours=48, reopen_window_days=3))
    assert terms.assumed_window == timedelta(hours=48) and terms.reopen_window == timedelta(days=3)


def test_a_plans_windows_decide_the_lifecycle():
    from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeKind
    from clonedesk.metering.domain.lifecycle import settle

    terms = Terms.from_plan(Plan(assumed_window_hours=48, reopen_window_days=3))
    replied = datetime(2026, 10, 5, 9, tzinfo=timezone.utc)
    quiet = AiReply("r1", "acme", "t1", "resolve", replied)
    # 30 h of quiet: assumed on the default plan, still pending on a 48 h window
    assert settle(quiet, [], Terms(), replied + timedelta(hours=30)).state is State.ASSUMED
    assert settle(quiet, [], terms, replied + timedelta(hours=30)).state is State.PENDING
    assumed = settle(quiet, [], terms, replied + timedelta(hours=48))
    assert (assumed.state, assumed.billed_at) == (State.ASSUMED, replied + timedelta(hours=48))
    # reopened four days after the confirmation: within the default 7 days, outside a 3-day window
    confirmed = AiReply("r2", "acme", "t2", "resolve", replied)
    events = [Outcome("e1", "r2", "acme", "t2", OutcomeKind.CUSTOMER_CONFIRMED, replied + timedelta(hours=1)),
              Outcome("e2", "r2", "acme", "t2", OutcomeKind.REOPENED, replied + timedelta(days=4))]
    now = replied + timedelta(days=5)
    assert settle(confirmed, events, Terms(), now).state is State.REOPENED
    assert settle(confirmed, events, terms, now).state is State.CONFIRMED
    within = [events[0], Outcome("e3", "r2", "acme", "t2", OutcomeKind.REOPENED, replied + timedelta(days=3))]
    assert settle(confirmed, within, terms, now).state is State.REOPENED


def test_free_tier_in_event_time_when_ids_sort_the_other_way_and_a_charge_crossing_the_month():
    from clonedesk.metering.domain.billing import charges_of, paid_charges
    from clonedesk.metering.domain.lifecycle import settle
    from tests.metering import free_tier_case as case

    outcomes = case.confirmations() + case.reopens()
    watermark = max(o.occurred_at for o in outcomes)
    lives = [settle(r, [o for o in outcomes if o.resolution_id == r.resolution_id], case.TERMS, watermark)
             for r in reversed(case.replies())]
    october, november = Month(2026, 10), Month(2026, 11)
    assert [life.resolution_id for life in charges_of(october, lives)] == case.OCTOBER_CHARGES
    assert [life.resolution_id for life in paid_charges(october, lives, case.TERMS)] == case.OCTOBER_PAID
    assert [life.resolution_id for life in charges_of(november, lives)] == case.NOVEMBER_CHARGES
    assert [life.resolution_id for life in paid_charges(november, lives, case.TERMS)] == case.NOVEMBER_PAID
    boundary = next(life for life in lives if life.resolution_id == "r0000")
    assert (boundary.state, boundary.billed_at) == (State.ASSUMED, case.BOUNDARY_BILLED_AT)
    assert compute_invoice(case.TENANT, october, lives, case.TERMS).to_json() == case.OCTOBER_INVOICE
    assert compute_invoice(case.TENANT, november, lives, case.TERMS).to_json() == case.NOVEMBER_INVOICE

    # a minute before r0000's window closes, October knows it only as pending
    before = case.BOUNDARY_BILLED_AT - timedelta(minutes=1)
    early = [settle(r, [o for o in case.confirmations() if o.resolution_id == r.resolution_id], case.TERMS,
                    before) for r in case.replies() if r.created_at < before]
    assert compute_invoice(case.TENANT, october, early, case.TERMS).to_json() == \
        case.OCTOBER_INVOICE_BEFORE_THE_WINDOW_CLOSES
    assert compute_invoice(case.TENANT, november, early, case.TERMS).billable_units == 0
