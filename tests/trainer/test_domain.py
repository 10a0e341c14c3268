"""The trainer's pure core: holdout split, training schedule and fairness, metrics, promotion, preview."""

from __future__ import annotations

import dataclasses

import pytest

from clonedesk.core.domain.holdout import is_holdout, ticket_bucket
from clonedesk.trainer.domain.metrics import ScoredTurn, compute_metrics, metrics_by_category
from clonedesk.trainer.domain.schedule import (
    FIRST, REFRESH_NEW_SAMPLES, REFRESH_TIME_LIMIT, TrainingSchedule, TenantProgress, next_due,
    select_training_samples, training_due)
from clonedesk.trainer.domain.preview import preview_report
from clonedesk.trainer.domain.rollback import RollbackRefused, rollback_target
from clonedesk.trainer.domain.promotion import decide_promotion, holdout_score
from clonedesk.v1 import common_pb2

RESOLVE, ASK, ACTION, ESCALATE = common_pb2.RESOLVE, common_pb2.ASK, common_pb2.ACTION, common_pb2.ESCALATE


# -- holdout -------------------------------------------------------------------------------------------

def test_holdout_is_a_stable_hash_of_the_ticket_and_near_the_fraction():
    tickets = [f"ticket-{i}" for i in range(5000)]
    held = [t for t in tickets if is_holdout(t, 0.1)]
    assert 400 < len(held) < 600
    assert held == [t for t in tickets if is_holdout(t, 0.1)]  # same answer every time
    assert set(held) <= {t for t in tickets if is_holdout(t, 0.3)}  # a bigger holdout contains a smaller
    assert 0.0 <= ticket_bucket("x") < 1.0
    assert not any(is_holdout(t, 0.0) for t in tickets[:100])
    with pytest.raises(ValueError):
        is_holdout("t", 1.5)


# -- policy --------------------------------------------------------------------------------------------

POLICY = TrainingSchedule(first_min_samples=100, refresh_min_new_samples=50, refresh_max_interval_s=600,
                          max_samples_per_run=300, replay_ratio=1.0, settle_s=0.0)  # due at once


def _progress(tenant, trainable, trained=0, has_adapter=False, last=None, retry=None):
    return TenantProgress(tenant, trainable, trained, has_adapter, last, retry)


def test_first_adapter_waits_for_enough_samples():
    assert training_due(_progress("a", 99), POLICY, now=0) is None
    assert training_due(_progress("a", 100), POLICY, now=0) == FIRST


def test_refresh_on_new_samples_or_time_limit():
    trained = dict(trained=200, has_adapter=True, last=1000.0)
    assert training_due(_progress("a", 249, **trained), POLICY, now=1100) is None
    assert training_due(_progress("a", 250, **trained), POLICY, now=1100) == REFRESH_NEW_SAMPLES
    assert training_due(_progress("a", 201, **trained), POLICY, now=1599) is None
    assert training_due(_progress("a", 201, **trained), POLICY, now=1600) == REFRESH_TIME_LIMIT
    assert training_due(_progress("a", 200, **trained), POLICY, now=99999) is None  # nothing new
    assert training_due(_progress("a", 900, **trained, retry=2000.0), POLICY, now=1900) is None


def test_a_due_tenant_waits_for_its_samples_to_settle_but_not_forever():
    settling = TrainingSchedule(first_min_samples=100, settle_s=10, settle_max_s=120)
    streaming = TenantProgress("a", 500, 0, False, last_sample_at=1000.0, burst_started_at=950.0)
    assert training_due(streaming, settling, now=1005) is None  # an import is still arriving
    assert training_due(streaming, settling, now=1010) == FIRST  # ten quiet seconds
    assert training_due(streaming, POLICY, now=1005) == FIRST  # no settling asked for
    endless = TenantProgress("a", 500, 0, False, last_sample_at=1069.0, burst_started_at=950.0)
    assert training_due(endless, settling, now=1069.5) is None
    assert training_due(endless, settling, now=1070) == FIRST  # 120 s into a stream that never pauses
    restarted = TenantProgress("a", 500, 0, False)  # arrival times unknown after a restart
    assert training_due(restarted, settling, now=0) == FIRST
    too_few = TenantProgress("a", 99, 0, False, last_sample_at=0.0, burst_started_at=0.0)
    assert training_due(too_few, settling, now=1000) is None


def test_a_flooding_tenant_does_not_starve_the_others():
    flood = _progress("flood", 100_000, trained=50_000, has_adapter=True, last=500.0)
    quiet = _progress("quiet", 260, trained=200, has_adapter=True, last=100.0)
    newcomer = _progress("new", 120)
    assert next_due([flood, quiet, newcomer], POLICY, now=1000)[0].tenant_id == "new"
    assert next_due([flood, quiet], POLICY, now=1000)[0].tenant_id == "quiet"
    # after the quiet tenant trained, the flood goes next, and its run is capped
    quiet_trained = _progress("quiet", 260, trained=260, has_adapter=True, last=1001.0)
    assert next_due([flood, quiet_trained], POLICY, now=1002)[0].tenant_id == "flood"
    chosen = select_training_samples(list(range(100_000)), 50_000, POLICY, is_refresh=True)
    assert len(chosen) == POLICY.max_samples_per_run
    assert next_due([quiet_trained], POLICY, now=1002) is None


def test_refresh_samples_are_the_new_ones_plus_a_seeded_replay():
    samples = list(range(400))
    chosen = select_training_samples(samples, 350, POLICY, is_refresh=True, seed=1)
    assert chosen[-50:] == list(range(350, 400))
    replay = chosen[:-50]
    assert len(replay) == 50 and all(s < 350 for s in replay) and len(set(replay)) == 50
    assert chosen == select_training_samples(samples, 350, POLICY, is_refresh=True, seed=1)
    assert select_training_samples(samples, 0, POLICY, is_refresh=False) == samples[-300:]


# -- metrics -------------------------------------------------------------------------------------------

def _turn(ticket, true, predicted, category="c", true_action="", predicted_action="", reply="ok", said="ok"):
    return ScoredTurn(ticket, category, true, true_action, reply, predicted, predicted_action, said)


def test_metrics_decisions_escalations_and_resolution_rate():
    turns = [
        _turn("t1", ASK, ASK), _turn("t1", ACTION, ACTION, true_action="Book(a=1)", predicted_action="book(a=2)"),
        _turn("t2", ASK, ASK), _turn("t2", ACTION, ACTION, true_action="Book(a=1)", predicted_action="Cancel()"),
        _turn("t3", ESCALATE, ESCALATE), _turn("t3", RESOLVE, ESCALATE),
        _turn("t4", ESCALATE, RESOLVE),
    ]
    metrics = compute_metrics(turns)
    assert metrics.decision_accuracy == pytest.approx(4 / 7)  # same call name counts, other call does not
    assert metrics.escalation_precision == pytest.approx(1 / 2)
    assert metrics.escalation_recall == pytest.approx(1 / 2)
    assert metrics.projected_resolution_rate == pytest.approx(1 / 4)  # only t1 is right throughout
    assert metrics.tickets == 4 and metrics.turns == 7
    assert metrics.reply_chrf == pytest.approx(100.0)


def test_undefined_escalation_ratios_are_none_and_chrf_scores_replies():
    metrics = compute_metrics([_turn("t", ASK, ASK, reply="Which city are you in?", said="Which city?"),
                               _turn("t", RESOLVE, RESOLVE, reply="Your table is booked.", said="Goodbye")])
    assert metrics.escalation_precision is None and metrics.escalation_recall is None
    assert 0 < metrics.reply_chrf < 100
    assert compute_metrics([]).decision_accuracy == 0.0


def test_metrics_by_category_skip_unknown_categories():
    turns = [_turn("a", ASK, ASK, category="Book"), _turn("b", ASK, RESOLVE, category="Pay"),
             _turn("c", ASK, ASK, category="")]
    by_category = metrics_by_category(turns)
    assert set(by_category) == {"Book", "Pay"}
    assert by_category["Book"].decision_accuracy == 1.0 and by_category["Pay"].decision_accuracy == 0.0


# -- promotion -----------------------------------------------------------------------------------------

def test_promotion_within_the_margin_only():
    assert decide_promotion(0.40, None, 0.02).promote
    assert decide_promotion(0.39, 0.40, 0.02).promote
    rejected = decide_promotion(0.37, 0.40, 0.02)
    assert not rejected.promote and "below" in rejected.reason
    good = compute_metrics([_turn("t", ASK, ASK)])
    bad = compute_metrics([_turn("t", ASK, RESOLVE, said="something else entirely")])
    assert holdout_score(good) == pytest.approx(1.0) and holdout_score(bad) < 0.5


# -- preview -------------------------------------------------------------------------------------------

def test_preview_report_shape_and_categories():
    adapter = [_turn("t1", ASK, ASK, category="Book"), _turn("t2", RESOLVE, RESOLVE, category="Pay")]
    base = [_turn("t1", ASK, ESCALATE, category="Book"), _turn("t2", RESOLVE, ESCALATE, category="Pay")]
    report = preview_report("acme", "acme@v3", {"adapter": adapter, "base": base, "retrieval": adapter[:1] + base[1:]})
    assert report["tenant_id"] == "acme" and report["adapter_version"] == "acme@v3"
    assert report["holdout_tickets"] == 2
    names = {"decision_accuracy", "reply_chrf", "escalation_precision", "escalation_recall", "projected_resolution_rate"}
    names |= {"answered_share", "answered_accuracy"}  # added at the adapter's threshold; the rest kept
    assert set(report["adapter"]) == set(report["base"]) == set(report["retrieval"]) == names
    assert set(report["intervals"]) == {"adapter", "base", "retrieval"} and report["confidence"]["curve"]
    assert report["adapter"]["decision_accuracy"] == 1.0 and report["base"]["decision_accuracy"] == 0.0
    assert report["retrieval"]["projected_resolution_rate"] == 0.5
    assert report["by_category"]["Pay"]["retrieval"]["decision_accuracy"] == 0.0
    assert report["by_category"]["Book"]["holdout_tickets"] == 1


def test_a_rollback_goes_to_a_promoted_version_only():
    statuses = {1: "promoted", 2: "rejected", 3: "promoted", 4: "promoted"}
    assert rollback_target(statuses, current=4) == 3
    assert rollback_target(statuses, current=3) == 1  # past the rejected v2
    assert rollback_target(statuses, current=4, to=1) == 1
    assert rollback_target(statuses, current=4, to=4) == 4  # re-announce the current one
    with pytest.raises(RollbackRefused, match="v2 was rejected"):
        rollback_target(statuses, current=4, to=2)
    with pytest.raises(RollbackRefused, match="no version v9"):
        rollback_target(statuses, current=4, to=9)
    with pytest.raises(RollbackRefused, match="no promoted version before v1"):
        rollback_target(statuses, current=1)
    with pytest.raises(RollbackRefused, match="no current adapter"):
        rollback_target({}, current=None)


def test_the_settings_defaults_are_the_schedules_and_the_recipes():
    """One place for each default: what TrainerSettings says is what the schedule and the LoRA recipe use
    when built without settings."""
    from clonedesk.trainer.adapters.lora import LoraTrainingConfig
    from clonedesk.trainer.settings import TrainerSettings

    settings = TrainerSettings()
    assert settings.schedule() == TrainingSchedule()
    assert dataclasses.replace(settings.lora(), target_modules=LoraTrainingConfig().target_modules) == \
        LoraTrainingConfig()
