"""Quality benchmark: does a tenant's adapter beat retrieval on tickets it has never seen?

For each SGD business (default Hotels_2, RentalCars_1, Restaurants_1, Banks_1), the first `--dialogues`
dialogues of its file are the tenant's resolved-ticket history; the product's own trainer
(trainer.training_run.run_training: sample selection, LoRA training, holdout scoring, calibration on the
holdout, the threshold for the target accuracy) builds its adapter from them. The last `--test-tickets`
dialogues of the file — never in the history — are the unseen tickets: every agent turn of them is
answered by

- the adapter (header constrained to the four decisions and the tenant's calls; its calibrated
  confidence against the threshold chosen on the holdout for 90 % answered accuracy),
- the base model alone (same prompts, same constraint),
- the retrieval baseline (TF-IDF over the history's trainable turns),

and scored against what the human agent did: decision accuracy (the action's name counts), reply chrF,
the share of turns answered at the threshold and their accuracy, the calibration error on the unseen
turns, each with a bootstrap 95 % interval over tickets (trainer.domain.preview), and the training time.
On the turns where the agent made a call, the adapter writes its reply after the call's result (the
recorded `service_results`, as the back office would answer); "call chrF" scores those replies, and
`--without-results` trains the same recipe without results (header and reply in one) beside it.
The figure of merit per business is the adapter's decision-accuracy lead over retrieval in points.

    .venv/bin/python bench/quality.py [--businesses Hotels_2,Banks_1] [--dialogues 300]
        [--test-tickets 30] [--set learning_rate=2e-3 --set decision_weight=3] [--no-base] [--json out.json]
        [--keep DIR]

`--set NAME=VALUE` sets any CLONEDESK_TRAINER_* setting (trainer.config.TrainerSettings) for every tenant:
the recipe under test. Everything runs locally in a temp data dir; the base model is the product's
default (SmolLM2-135M-Instruct from its PyPI wheel) unless CLONEDESK_BASE_MODEL says otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from clonedesk.core.adapters import adapter_calibration, trained_action_names, trained_context_turns
from clonedesk.core.base_model import ensure_base_model
from clonedesk.core.domain.confidence import Calibration, choose_threshold
from clonedesk.core.settings import Settings
from clonedesk.trainer.adapters.buffer import ProgressStore, SampleBuffer
from clonedesk.trainer.adapters.evaluation import calibrated, score_model, score_retrieval
from clonedesk.trainer.adapters.version_registry import AdapterRegistry
from clonedesk.ingest.domain.sgd import dialogue_samples
from clonedesk.core.sgd import find_sgd_dir, read_dialogues
from clonedesk.trainer.settings import TrainerSettings
from clonedesk.trainer.domain.metrics import chrf, decision_correct
from clonedesk.trainer.domain.preview import preview_report
from clonedesk.v1 import common_pb2
from clonedesk.trainer.service_layer.training_run import run_training
from rich.console import Console
from rich.table import Table

console = Console(width=160)
DEFAULT_BUSINESSES = ("Hotels_2", "RentalCars_1", "Restaurants_1", "Banks_1")
# The recipe the bench measures unless --set says otherwise (the product's defaults otherwise apply).
BENCH_RECIPE = {"first_min_samples": 1}


def business_split(path: Path, dialogues: int, test_tickets: int) -> tuple[list[dict], list[dict]]:
    every = list(read_dialogues(path))
    if len(every) < dialogues + test_tickets:
        dialogues = max(1, len(every) - test_tickets)
    return every[:dialogues], every[-test_tickets:]


def run_business(business: str, args, base_model: str, overrides: dict) -> dict:
    tenant_id = business.lower().replace("_", "-")
    path = find_sgd_dir() / f"train_{business}.jsonl"
    history, unseen = business_split(path, args.dialogues, args.test_tickets)
    with tempfile.TemporaryDirectory(prefix="clonedesk-quality-") as tmp:
        data = Path(tmp)
        settings = TrainerSettings(**{**BENCH_RECIPE, **overrides})
        buffer = SampleBuffer(data / "trainer", settings.holdout_fraction)
        buffer.append(s for d in history for s in dialogue_samples(tenant_id, d))
        trainable, holdout = buffer.split(tenant_id)
        console.print(f"{business}: {len(history)} dialogues of history ({len(trainable)} trainable turns,"
                      f" {len(holdout)} held out), {len(unseen)} unseen tickets")
        registry = AdapterRegistry(data)
        started = time.monotonic()
        outcome = run_training(tenant_id, "bench", buffer=buffer, progress_store=ProgressStore(data / "trainer"),
                               registry=registry, base_model=base_model, settings=settings)
        trained_s = time.monotonic() - started
        adapter = outcome.path
        if args.keep:  # the adapter outlives the temp dir: decoding can be studied without retraining
            adapter = Path(shutil.copytree(adapter, args.keep / tenant_id / outcome.name, dirs_exist_ok=True))
        record = adapter_calibration(adapter)
        threshold = choose_threshold(None, args.target_accuracy, record)
        test = [s for d in unseen for s in dialogue_samples(tenant_id, d)]
        t0 = time.monotonic()
        adapter_turns = calibrated(score_model(base_model, adapter, test), Calibration.from_dict(record))
        score_s = time.monotonic() - t0
        scored = {
            "adapter": adapter_turns,
            "base": score_model(base_model, None, test, context_turns=trained_context_turns(adapter),
                                action_names=trained_action_names(adapter)) if args.base else [],
            "retrieval": score_retrieval(trainable, test),
        }
        report = preview_report(tenant_id, outcome.name, scored, threshold=threshold, threshold_source="holdout",
                                target_accuracy=args.target_accuracy, calibration=record, replicates=args.replicates)
    if not args.base:
        report["base"] = None
    report["holdout"] = outcome.metrics  # the same adapter on the history's own held-out turns
    report["action_chrf"] = {name: action_turns_chrf(turns) for name, turns in scored.items() if turns}
    report["action_turns"] = sum(1 for t in adapter_turns if t.true_decision == common_pb2.ACTION)
    if args.without_results:
        report["without_results"] = without_results(tenant_id, history, test, base_model, overrides)
    report["confusion"] = confusion(adapter_turns)
    report["retrieval_confusion"] = confusion(scored["retrieval"])
    report.update(business=business, history_dialogues=len(history), trainable_turns=len(trainable),
                  holdout_turns_for_calibration=min(len(holdout), settings.max_eval_turns),
                  unseen_tickets=len(unseen), unseen_turns=len(test),
                  training_seconds=round(outcome.training.get("seconds", 0.0), 1),
                  run_seconds=round(trained_s, 1), scoring_seconds=round(score_s, 1),
                  training_steps=outcome.training.get("steps"), recipe=settings.lora().to_dict())
    return report


def action_turns_chrf(turns) -> float | None:
    """Reply chrF on the turns where the agent made a call: the replies a call's result should inform."""
    chosen = [t for t in turns if t.true_decision == common_pb2.ACTION]
    if not chosen:
        return None
    return chrf([t.predicted_reply for t in chosen], [t.true_reply for t in chosen])


def without_results(tenant_id: str, history: list[dict], test: list, base_model: str, overrides: dict) -> dict:
    """The same recipe trained and scored without the calls' results (header and reply in one): what the
    results add to the replies."""
    with tempfile.TemporaryDirectory(prefix="clonedesk-quality-") as tmp:
        data = Path(tmp)
        settings = TrainerSettings(**{**BENCH_RECIPE, **overrides, "action_results": False})
        buffer = SampleBuffer(data / "trainer", settings.holdout_fraction)
        buffer.append(s for d in history for s in dialogue_samples(tenant_id, d))
        outcome = run_training(tenant_id, "bench", buffer=buffer, progress_store=ProgressStore(data / "trainer"),
                               registry=AdapterRegistry(data), base_model=base_model, settings=settings)
        turns = score_model(base_model, outcome.path, test)
    return {"decision_accuracy": sum(decision_correct(t) for t in turns) / len(turns),
            "reply_chrf": chrf([t.predicted_reply for t in turns], [t.true_reply for t in turns]),
            "action_chrf": action_turns_chrf(turns)}


def confusion(turns) -> dict[str, int]:
    """`TRUE->PREDICTED` counts of the decisions (`ACTION:name` where the call's name was wrong)."""
    from collections import Counter

    from clonedesk.core.domain.conversation_format import DECISION_NAMES
    from clonedesk.trainer.domain.metrics import action_name

    counts: Counter = Counter()
    for t in turns:
        key = f"{DECISION_NAMES[t.true_decision]}->{DECISION_NAMES[t.predicted_decision]}"
        if key == "ACTION->ACTION" and action_name(t.true_action) != action_name(t.predicted_action):
            key += " (other call)"
        counts[key] += 1
    return dict(counts.most_common())


def _pct(value, interval=None) -> str:
    if value is None:
        return "—"
    text = f"{value:.1%}"
    return text + (f" [{interval[0]:.0%}–{interval[1]:.0%}]" if interval else "")


def _num(value, interval=None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" + (f" [{interval[0]:.1f}–{interval[1]:.1f}]" if interval else "")


def summary_table(reports: list[dict]) -> Table:
    table = Table(title="unseen tickets: adapter vs base model vs retrieval (95% intervals over tickets)")
    for column in ("business", "tickets / turns", "train s", "decision acc: adapter", "base", "retrieval",
                   "lead (pts)", "chrF: adapter", "retrieval", "call chrF: adapter", "no results", "retrieval",
                   "threshold", "answered", "answered acc", "calib. error"):
        table.add_column(column, justify="right")
    for r in reports:
        iv = r["intervals"]
        lead = 100 * (r["adapter"]["decision_accuracy"] - r["retrieval"]["decision_accuracy"])
        table.add_row(
            r["business"], f"{r['unseen_tickets']} / {r['unseen_turns']}", f"{r['training_seconds']:.0f}",
            _pct(r["adapter"]["decision_accuracy"], iv["adapter"]["decision_accuracy"]),
            _pct(r["base"]["decision_accuracy"]) if r["base"] else "—",
            _pct(r["retrieval"]["decision_accuracy"], iv["retrieval"]["decision_accuracy"]),
            f"{lead:+.1f}",
            _num(r["adapter"]["reply_chrf"], iv["adapter"]["reply_chrf"]),
            _num(r["retrieval"]["reply_chrf"], iv["retrieval"]["reply_chrf"]),
            _num(r.get("action_chrf", {}).get("adapter")),
            _num((r.get("without_results") or {}).get("action_chrf")),
            _num(r.get("action_chrf", {}).get("retrieval")),
            f"{r['confidence']['threshold']:.2f}",
            _pct(r["adapter"]["answered_share"], iv["adapter"]["answered_share"]),
            _pct(r["adapter"]["answered_accuracy"], iv["adapter"]["answered_accuracy"]),
            f"{r['confidence']['calibration_error']:.3f}",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--businesses", default=",".join(DEFAULT_BUSINESSES))
    parser.add_argument("--dialogues", type=int, default=300, help="dialogues of history per tenant")
    parser.add_argument("--test-tickets", type=int, default=30, help="unseen dialogues scored per tenant")
    parser.add_argument("--target-accuracy", type=float, default=0.9)
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a TrainerSettings field for every tenant (repeatable)")
    parser.add_argument("--no-base", dest="base", action="store_false", help="skip the base-model column")
    parser.add_argument("--without-results", action="store_true",
                        help="also train without the calls' results (action_results=false) to compare replies")
    parser.add_argument("--json", type=Path, help="write every report here")
    parser.add_argument("--keep", type=Path, help="copy each trained adapter under DIR/<tenant>/")
    args = parser.parse_args()
    from clonedesk.core.progress import quiet_library_bars

    quiet_library_bars()
    overrides = dict(item.split("=", 1) for item in args.set)
    if find_sgd_dir() is None:
        sys.exit("no SGD data: ../shared/datasets/sgd or data/sgd")
    base_model = ensure_base_model(Settings())
    console.print(f"base model: {base_model}; recipe overrides: {overrides or 'none'}")
    reports = []
    for business in args.businesses.split(","):
        reports.append(run_business(business.strip(), args, str(base_model), overrides))
        console.print(summary_table(reports[-1:]))
        if args.json:  # after each business: a long run interrupted keeps what it measured
            args.json.write_text(json.dumps(reports, indent=1, default=str))
    console.print(summary_table(reports))
    for r in reports:
        lead = 100 * (r["adapter"]["decision_accuracy"] - r["retrieval"]["decision_accuracy"])
        console.print(f"{r['business']}: decision accuracy lead over retrieval {lead:+.1f} points; reply chrF"
                      f" {r['adapter']['reply_chrf'] - r['retrieval']['reply_chrf']:+.1f}; answered"
                      f" {r['adapter']['answered_share']:.0%} at {r['adapter']['answered_accuracy'] or 0:.1%}")


if __name__ == "__main__":
    main()
