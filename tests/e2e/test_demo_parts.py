"""The demo's pure parts: the seeded split and its trainer thresholds, the webhooks it sends (read back by
the gateway's own normaliser), the customer-reaction script, the report figures, and the data-dir rule
for a second run."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from clonedesk.core.settings import Settings
from clonedesk.core.tenants import TenantStore
from clonedesk.demo.adapters.helpdesk import DemoStepFailed
from clonedesk.demo.adapters.workspace import MARKER, prepare, read_marker, write_marker
from clonedesk.demo.domain import zendesk_events as zd
from clonedesk.demo.domain.reactions import CSAT_WEIGHTS, live_script
from clonedesk.demo.domain.report import invoice_cells, tenant_figures
from clonedesk.demo.domain.split import (FULL, QUICK, DemoSizes, NotEnoughDialogues, agent_samples,
                                         plan_tenant, trainer_thresholds)
from clonedesk.core.domain.confirmation import is_confirmation
from clonedesk.ingest.domain.zendesk import normalise_webhook
from clonedesk.core.domain.holdout import is_holdout, may_be_pretrained_on
from clonedesk.v1 import common_pb2, events_pb2
from tests.conftest import REPO

BUSINESSES = ("Banks_1", "RentalCars_1", "Hotels_1")
Kind = events_pb2.HelpdeskEvent.Kind


def dialogues(business: str) -> list[dict]:
    path = REPO / "data" / "sgd" / f"train_{business}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def holdout(ticket: str) -> bool:
    return is_holdout(ticket, 0.1)


# -- the split ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [QUICK, FULL], ids=["quick", "full"])
def test_split_is_disjoint_seeded_and_gives_most_to_history_and_the_rest_to_live_tickets(sizes):
    plans = []
    for business in BUSINESSES:
        source = dialogues(business)
        plan = plan_tenant(business, source, sizes, seed=7, is_holdout=holdout, pretrained_on=may_be_pretrained_on)
        again = plan_tenant(business, list(reversed(source)), sizes, seed=7, is_holdout=holdout,
                            pretrained_on=may_be_pretrained_on)
        parts = [plan.live, plan.history_webhooks, plan.history_import, plan.refresh]
        ids = [d["dialogue_id"] for part in parts for d in part]
        assert len(ids) == len(set(ids))  # no dialogue in two roles
        assert ids == [d["dialogue_id"] for part in (again.live, again.history_webhooks, again.history_import,
                                                     again.refresh) for d in part]  # input order irrelevant
        # Every dialogue of the tenant is used (the full demo: all the business's), most as history.
        assert len(ids) == plan.dialogues == (len(source) if sizes.dialogues is None else sizes.dialogues)
        assert len(plan.history) > plan.dialogues / 2 > len(plan.live) >= sizes.after_swap_tickets + 2
        assert len(plan.history_webhooks) == sizes.webhook_history
        trainable = sum(agent_samples(d) for d in plan.history if not holdout(d["dialogue_id"]))
        assert trainable == plan.history_trainable
        assert plan.refresh_trainable == sum(agent_samples(d) for d in plan.refresh
                                             if not holdout(d["dialogue_id"])) > 0
        assert any(holdout(d["dialogue_id"]) for d in plan.history)  # the preview has tickets to score
        assert not any(holdout(d["dialogue_id"]) for d in plan.history_webhooks)
        # No live ticket was ever in a model's training data: not the base model's, not a holdout.
        assert not any(may_be_pretrained_on(d["dialogue_id"]) or holdout(d["dialogue_id"]) for d in plan.live)
        plans.append(plan)
    if sizes.dialogues is None:
        assert [len(p.live) for p in plans] == [52, 26, 29]  # Banks 207, RentalCars 104, Hotels 115 dialogues
    thresholds = trainer_thresholds(plans)
    for plan in plans:
        # Every history reaches the first threshold and every refresh batch the refresh one.
        assert plan.history_trainable >= thresholds["first_min_samples"]
        assert plan.refresh_trainable >= thresholds["refresh_min_new_samples"]
    assert thresholds["first_min_samples"] in {p.history_trainable for p in plans}
    assert thresholds["refresh_min_new_samples"] in {p.refresh_trainable for p in plans}


def test_a_different_seed_gives_a_different_split():
    source = dialogues("Hotels_1")
    first = plan_tenant("Hotels_1", source, QUICK, seed=1, is_holdout=holdout)
    second = plan_tenant("Hotels_1", source, QUICK, seed=2, is_holdout=holdout)
    assert [d["dialogue_id"] for d in first.live] != [d["dialogue_id"] for d in second.live]


def test_too_few_dialogues_is_a_clear_error():
    tiny = DemoSizes(dialogues=6, history_share=0.6, refresh_share=0.2, webhook_history=2, live_turns=2)
    with pytest.raises(NotEnoughDialogues, match="Banks_1: 6 dialogues leave 1 live tickets"):
        plan_tenant("Banks_1", dialogues("Banks_1"), tiny, seed=7, is_holdout=holdout)
    seen_all = DemoSizes(dialogues=20, history_share=0.6, refresh_share=0.2, webhook_history=2, live_turns=2)
    with pytest.raises(NotEnoughDialogues, match="unseen by the base model"):
        plan_tenant("Banks_1", dialogues("Banks_1"), seen_all, seed=7, is_holdout=holdout,
                    pretrained_on=lambda ticket: True)
    with pytest.raises(ValueError, match="over half"):
        DemoSizes(dialogues=None, history_share=0.4, refresh_share=0.2, webhook_history=2, live_turns=2)


def test_a_history_without_a_held_out_ticket_takes_one_from_later_parts():
    never = [{"dialogue_id": f"d{i}", "turns": [{"speaker": "USER", "utterance": "hi"},
                                                 {"speaker": "SYSTEM", "utterance": "hello"}]} for i in range(20)]
    sizes = DemoSizes(dialogues=None, history_share=0.6, refresh_share=0.2, webhook_history=2, live_turns=2)
    plan = plan_tenant("Tiny_1", never, sizes, seed=7, is_holdout=lambda ticket: ticket == "d3")
    assert "d3" in {d["dialogue_id"] for d in plan.history}
    assert (len(plan.history), len(plan.refresh), len(plan.live)) == (12, 4, 4)


def test_samples_are_agent_turns_after_a_customer_turn():
    dialogue = {"turns": [{"speaker": "SYSTEM", "utterance": "Hello"}, {"speaker": "USER", "utterance": "Hi"},
                          {"speaker": "SYSTEM", "utterance": "How can I help?"},
                          {"speaker": "SYSTEM", "utterance": " "}, {"speaker": "USER", "utterance": "Bye"},
                          {"speaker": "SYSTEM", "utterance": "Bye!"}]}
    assert agent_samples(dialogue) == 2


# -- the webhooks, as the gateway reads them ----------------------------------------------------------


def test_resolved_ticket_webhooks_normalise_to_the_dialogue_with_the_announced_event_ids():
    dialogue = dialogues("Banks_1")[0]
    at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    hooks = zd.resolved_ticket("banks-1", dialogue, at)
    events = []
    for hook in hooks:
        normalised = normalise_webhook("banks-1", hook.payload)
        assert normalised.ignored is None and len(normalised.events) == 1
        assert normalised.events[0].event_id == hook.event_id
        events.append(normalised.events[0])
    assert events[0].kind == Kind.TICKET_CREATED and events[0].body == dialogue["turns"][0]["utterance"]
    messages = [e for e in events if e.kind == Kind.MESSAGE]
    assert [m.body for m in messages] == [t["utterance"] for t in dialogue["turns"]]
    assert [m.author_role for m in messages] == [
        common_pb2.CUSTOMER if t["speaker"] == "USER" else common_pb2.AGENT for t in dialogue["turns"]]
    assert events[-1].kind == Kind.STATUS_CHANGED and events[-1].status == common_pb2.SOLVED
    times = [e.occurred_at.ToDatetime() for e in events[1:]]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert len({h.event_id for h in hooks}) == len(hooks)


def test_live_webhooks_normalise_to_ai_turns_assignments_ratings_and_reopens():
    at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    echo = zd.comment_added("t", "42", "ai-1", "Done.", zd.AI_AUTHOR_ID, True, at)
    ai = normalise_webhook("t", echo.payload)
    assert ai.events[0].author_role == common_pb2.AI
    assigned = normalise_webhook("t", zd.agent_assigned("t", "42", "x", "agent-7", at).payload)
    assert assigned.events[0].kind == Kind.ASSIGNED and assigned.events[0].assignee_id == "agent-7"
    rated = zd.satisfaction_rated("t", "42", 4, at)
    assert normalise_webhook("t", rated.payload).events[0].csat_score == 4
    reopen = zd.status_changed("t", "42", "r", "solved", "open", at)
    reopened = normalise_webhook("t", reopen.payload).events[0]
    assert reopened.status == common_pb2.OPEN and reopened.previous_status == common_pb2.SOLVED


# -- the reactions ------------------------------------------------------------------------------------


def test_live_script_keeps_the_first_and_closing_messages_and_is_reproducible():
    dialogue = dialogues("Hotels_1")[3]
    user = [t["utterance"] for t in dialogue["turns"] if t["speaker"] == "USER"]
    script = live_script(dialogue, 3, seed=7, tenant_id="hotels-1")
    assert len(user) > 3
    assert script.customer_messages == (user[0], user[1], user[-1])
    assert script == live_script(dialogue, 3, seed=7, tenant_id="hotels-1")
    assert script.agent_turn(99) == script.agent_turns[-1]


def test_simulated_fates_follow_their_rates_and_never_take_over_after_the_last_reply():
    scripts = [live_script(d, 3, seed=11, tenant_id="banks-1") for d in dialogues("Banks_1")]
    fates = [s.fate for s in scripts]
    takeovers = [f for f in fates if f.takeover_after is not None]
    assert 0.05 < len(takeovers) / len(fates) < 0.3
    for script in scripts:
        if script.fate.takeover_after is not None:
            assert 1 <= script.fate.takeover_after < len(script.customer_messages)
            assert not script.fate.reopen
    ratings = [f.csat for f in fates if f.csat is not None]
    assert set(ratings) <= set(CSAT_WEIGHTS) and len(set(ratings)) >= 3
    assert sum(r >= 4 for r in ratings) > sum(r <= 2 for r in ratings)


def test_some_customers_ask_for_a_person_in_words_the_resolver_hands_over():
    from clonedesk.demo.domain.reactions import Reaction
    from clonedesk.resolver.domain.human_request import asks_for_a_human

    scripts = [live_script(d, 3, seed=11, tenant_id="banks-1") for d in dialogues("Banks_1")]
    asking = [s for s in scripts if s.fate.asks_for_human_at is not None]
    assert 0.03 < len(asking) / len(scripts) < 0.25
    for script in asking:
        at = script.fate.asks_for_human_at
        assert 1 <= at < len(script.customer_messages)
        assert asks_for_a_human(script.customer_messages[at])
    for script in scripts:  # and no one else's words do
        if script.fate.asks_for_human_at is None:
            assert not any(asks_for_a_human(m) for m in script.customer_messages)
    from clonedesk.demo.domain.reactions import Fate, LiveScript

    script = LiveScript("42", "CheckBalance", ("I need to move money", "Can I talk to a real person please?",
                                               "Thanks!"), ("Which account?", "Done.", "Bye."),
                        Fate(None, False, None, 1, "Can I talk to a real person please?"))
    result, kinds, _, _ = play(script, [(common_pb2.RESOLVE, "reply 1"), (common_pb2.ESCALATE, "")])
    assert result.reactions[Reaction.ASKS_FOR_HUMAN] == 1 and result.ai_escalated and result.human_took_over


def test_the_summary_counts_escalations_by_reason():
    from clonedesk.demo.live import TicketResult
    from clonedesk.demo.tables import escalation_kinds

    results = [TicketResult("a", "1", ai_escalated=True, escalation_reason="customer asked for a human"),
               TicketResult("a", "2", ai_escalated=True, escalation_reason="confidence 0.41 under threshold 0.62"),
               TicketResult("a", "3", ai_escalated=True, escalation_reason="confidence 0.12 under threshold 0.62"),
               TicketResult("a", "4"), TicketResult("a", "5", ai_escalated=True, escalation_reason="model escalated")]
    assert escalation_kinds(results) == {"customer asked for a human": 1, "confidence under the threshold": 2,
                                         "model escalated": 1}
    calls = ["action BookHouse timed out after 5s (3 attempts)", "action BookHouse failed: no rooms",
             "action Refund is not allowed for this tenant", "no actions URL for this tenant: the action cannot be"
             " carried out", "action SearchHouse: the back office answered HTTP 500 (3 attempts)"]
    assert escalation_kinds([TicketResult("a", str(i), ai_escalated=True, escalation_reason=reason)
                             for i, reason in enumerate(calls)]) == {
        "action timed out": 1, "action failed": 2, "action not allowed": 1, "no back office": 1}


def test_sgd_closing_messages_are_read_as_confirmations_by_ingest():
    closings = [[t["utterance"] for t in d["turns"] if t["speaker"] == "USER"][-1]
                for d in dialogues("Hotels_1")]
    confirming = sum(is_confirmation(text) for text in closings)
    assert confirming > len(closings) // 3  # the demo's "confirmed" resolutions come from these


# -- the report ---------------------------------------------------------------------------------------


def test_report_adds_months_in_decimal_and_keeps_the_api_rates():
    invoices = [
        {"resolutions": {"confirmed": 2, "assumed": 0, "escalated": 1, "reopened": 0, "pending": 3},
         "billable_units": 2, "free_units": 2, "charged_units": 0, "unit_price_usd": "0.99",
         "credits_usd": "0.00", "total_usd": "0.00"},
        {"resolutions": {"confirmed": 5, "assumed": 1, "escalated": 0, "reopened": 1, "pending": 0},
         "billable_units": 6, "free_units": 1, "charged_units": 5, "unit_price_usd": "0.99",
         "credits_usd": "0.99", "total_usd": "3.96"},
    ]
    usage = {"resolution_rate": 0.7, "escalation_rate": 0.1, "csat": {"average": 4.25, "count": 4}}
    figures = tenant_figures(invoices, usage)
    assert figures.replies == 13 and figures.resolutions["confirmed"] == 7
    assert figures.cells() == ["13", "8", "1", "1", "3", "70%", "10%", "4.25 (4)"]
    assert invoice_cells(invoices[1]) == ["6", "1", "5", "$0.99", "$0.99", "$3.96"]
    unrated = tenant_figures(invoices, {"csat": {"average": None, "count": 0}})
    assert unrated.cells()[-3:] == ["—", "—", "—"]
    assert Decimal(invoices[1]["total_usd"]) == 5 * Decimal("0.99") - Decimal("0.99")


# -- a second run -------------------------------------------------------------------------------------


class StackStopper:
    """Stands in for `clonedesk down` in these unit tests: records that it was asked."""

    def __init__(self, was_running: bool):
        self.was_running = was_running
        self.calls = 0

    def __call__(self, settings) -> bool:
        self.calls += 1
        return self.was_running


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def test_a_second_run_stops_the_first_and_starts_clean_keeping_the_base_model(settings):
    data = settings.resolved_data_dir
    TenantStore(data).add("banks-1")
    (data / "base-models" / "tiny").mkdir(parents=True)
    (data / "base-models" / "tiny" / "config.json").write_text("{}")
    (data / "trainer" / "buffers").mkdir(parents=True)
    write_marker(data, status="running")
    stopper = StackStopper(was_running=True)
    found = prepare(settings, stopper)
    assert stopper.calls == 1 and "unfinished" in found and "stopped" in found
    assert sorted(p.name for p in data.iterdir()) == ["base-models", MARKER]
    assert read_marker(data)["status"] == "running"
    write_marker(data, status="complete")
    assert "a complete earlier demo run" in prepare(settings, StackStopper(was_running=False))


def test_a_data_dir_of_another_installation_is_refused_untouched(settings):
    data = settings.resolved_data_dir
    TenantStore(data).add("acme")
    stopper = StackStopper(was_running=True)
    with pytest.raises(DemoStepFailed, match="did not create"):
        prepare(settings, stopper)
    assert stopper.calls == 0 and TenantStore(data).find("acme") is not None and read_marker(data) is None


@pytest.mark.parametrize("external", [{"kafka_bootstrap": "kafka.internal:9092"},
                                      {"clickhouse_dsn": "http://clickhouse.internal:8123"}])
def test_a_run_against_external_services_is_refused_before_touching_anything(tmp_path, external):
    settings = Settings(data_dir=tmp_path / "data", **external)
    write_marker(settings.resolved_data_dir, status="complete")
    (settings.resolved_data_dir / "logs").mkdir()
    stopper = StackStopper(was_running=True)
    with pytest.raises(DemoStepFailed, match="embedded stack.*unset CLONEDESK_"):
        prepare(settings, stopper)
    assert stopper.calls == 0 and (settings.resolved_data_dir / "logs").is_dir()


def test_an_empty_data_dir_is_used_as_it_is_and_marked(settings):
    data = settings.resolved_data_dir
    stopper = StackStopper(was_running=False)
    assert prepare(settings, stopper) == "an empty data dir"
    assert stopper.calls == 1 and read_marker(data)["status"] == "running"
    (data / "logs").mkdir()
    (data / "logs" / "gateway.log").write_text("from the run that was interrupted")
    assert "unfinished earlier demo run" in prepare(settings, stopper)
    assert not (data / "logs").exists()


# -- one live ticket's choreography (the stack replaced by recording fakes) ----------------------------


class RecordingSender:
    def __init__(self):
        self.sent: list[dict] = []

    async def send(self, tenant_id, secret, webhook) -> None:
        self.sent.append(webhook.payload)


class ScriptedResolver:
    """Answers each customer message with the next scripted (decision, reply)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.asked: list[str] = []

    async def wait_for(self, request_id, timeout, what):
        from clonedesk.v1 import resolver_pb2

        decision, reply = self.answers.pop(0)
        self.asked.append(request_id)
        return resolver_pb2.Resolution(resolution_id=f"r{len(self.asked)}", decision=decision, reply=reply,
                                       adapter_version="t@v1", request_id=request_id)


class PostedReplies:
    async def wait_for(self, tenant_id, ticket_id, key, timeout):
        from clonedesk.core.domain.ids import reply_id

        return {"body": {reply_id(f"r{n}"): f"reply {n}" for n in range(1, 9)}[key], "id": 1}


def play(script, answers):
    import asyncio

    from clonedesk.demo.live import LiveTicket

    sender, resolver = RecordingSender(), ScriptedResolver(answers)
    result = asyncio.run(LiveTicket("t", "secret", script, sender, PostedReplies(), resolver, 5).play())
    return result, [p["type"].rsplit(".", 1)[1] for p in sender.sent], sender.sent, resolver


def a_script(messages, takeover_after=None, reopen=False, csat=None):
    from clonedesk.demo.domain.reactions import Fate, LiveScript

    return LiveScript("42", "CheckBalance", tuple(messages), ("Which account?", "Done.", "Bye."),
                      Fate(takeover_after, reopen, csat))


def test_a_confirmed_ticket_is_answered_echoed_solved_rated_and_reopened():
    script = a_script(["What's my balance?", "No thanks, that's all."], reopen=True, csat=5)
    result, kinds, sent, resolver = play(script, [(common_pb2.RESOLVE, "reply 1")])
    assert kinds == ["created", "comment_added", "comment_added", "status_changed",
                     "satisfaction_rating_changed", "status_changed"]
    echo = sent[1]["event"]["comment"]
    assert echo["author"]["id"] == zd.AI_AUTHOR_ID and echo["body"] == "reply 1"
    assert len(resolver.asked) == 1  # the confirmation asks for no answer
    assert result.replies == 1 and not result.human_took_over and result.adapters == ["t@v1"]
    assert sent[-1]["event"] == {"previous": "solved", "current": "open"}


def test_an_ai_escalation_hands_the_ticket_to_a_human_with_the_dialogues_words():
    script = a_script(["I need to move money", "From checking", "Thanks!"])
    result, kinds, sent, _ = play(script, [(common_pb2.ESCALATE, "")])
    assert kinds == ["created", "agent_assignment_changed", "comment_added", "status_changed"]
    human = sent[2]["event"]["comment"]
    assert human["body"] == "Which account?" and human["author"]["is_staff"]
    assert result.ai_escalated and result.human_took_over and result.replies == 0


def test_a_simulated_take_over_follows_the_ais_nth_reply():
    script = a_script(["I need to move money", "From checking", "Thanks!"], takeover_after=1)
    result, kinds, _, resolver = play(script, [(common_pb2.ASK, "reply 1")])
    assert kinds == ["created", "comment_added", "agent_assignment_changed", "comment_added",
                     "status_changed"]
    assert result.human_took_over and result.replies == 1 and len(resolver.asked) == 1


# -- waiting for the trainer ----------------------------------------------------------------------------


def test_the_wait_for_adapters_runs_from_the_last_one_to_arrive():
    from clonedesk.demo.domain.waiting import StallDeadline

    now = [0.0]
    deadline = StallDeadline(900, clock=lambda: now[0])
    for arrival in (600.0, 1200.0, 1800.0):  # three adapters, 10 minutes apart: 30 minutes in all
        now[0] = arrival - 1
        assert not deadline.expired()
        now[0] = arrival
        deadline.progressed()
    now[0] = 1800 + 900
    assert not deadline.expired()
    now[0] = 1800 + 901  # nothing for longer than the limit: a stalled trainer
    assert deadline.expired()
