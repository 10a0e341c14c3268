"""The demo's tables of what happened (pure: built from what the run collected; the run prints them)."""

from __future__ import annotations

from collections import Counter

from rich.table import Table

from clonedesk.core.domain.confidence import CURVE_THRESHOLDS
from clonedesk.core.domain.escalations import escalation_kind
from clonedesk.core.domain.preview_figures import figure
from clonedesk.demo.domain.reactions import ORIGIN, Reaction
from clonedesk.demo.live import TicketResult


def escalation_kinds(results) -> Counter:
    return Counter(escalation_kind(r.escalation_reason) for r in results if r.ai_escalated)


def curve_table(plans, reports: dict[str, dict]) -> Table:
    """Each adapter's answered share / accuracy of the answered turns by threshold, and its own."""
    table = Table("adapter", "threshold (source)", "calibration error",
                  *(f"≥{t:.1f}" for t in CURVE_THRESHOLDS),
                  title="answered turns / their decision accuracy, by confidence threshold (held-out turns)")
    for plan in plans:
        confidence = reports[plan.tenant_id].get("confidence") or {}
        points = {p["threshold"]: p for p in confidence.get("curve", [])}
        cells = []
        for t in CURVE_THRESHOLDS:
            point = points.get(t)
            cells.append("—" if point is None else f"{point['answered_share']:.0%} / "
                         + figure("answered_accuracy", point["answered_accuracy"]))
        threshold = confidence.get("threshold")
        table.add_row(reports[plan.tenant_id]["adapter_version"],
                      f"{threshold:.2f} (holdout)" if confidence.get("threshold_source", "").startswith("holdout")
                      else f"{threshold:.2f} (override)" if threshold is not None else "—",
                      f"{confidence.get('calibration_error', 0.0):.3f}", *cells)
    return table


def live_table(results: list[TicketResult], title: str) -> Table:
    reactions: Counter = Counter()
    for result in results:
        reactions.update(result.reactions)
    table = Table("what happened", "count", "where it came from", title=title)
    for reaction in Reaction:
        if reactions[reaction]:
            table.add_row(reaction.value, str(reactions[reaction]), ORIGIN[reaction].value)
    table.add_row("AI replies posted to the helpdesk simulator", str(sum(r.replies for r in results)),
                  "the resolver, via the outbound poster")
    verdicts = [v for r in results for v in r.verdicts]
    if verdicts:
        right = sum(v.right for v in verdicts)
        table.add_row("AI answers judged right (decision and reply as the agent's)",
                      f"{right} of {len(verdicts)} ({right / len(verdicts):.0%})",
                      "judged: the AI's answer against the agent's")
    table.add_row("AI escalations", str(sum(r.ai_escalated for r in results)), "the resolver")
    for reason, count in sorted(escalation_kinds(results).items()):
        table.add_row(f"  escalated: {reason}", str(count), "the resolver")
    actions: Counter = Counter()
    for result in results:
        actions.update(result.actions)
    for outcome, count in sorted(actions.items()):
        table.add_row(f"back-office calls: {outcome}", str(count),
                      "the resolver, answered by the simulator from the dialogue's recorded results")
    return table


def action_replies_table(results: list[TicketResult]) -> Table | None:
    """A few replies the adapters wrote after a call was carried out, beside the call."""
    shown = [(r.tenant_id, line) for r in results for line in r.action_replies][:6]
    if not shown:
        return None
    table = Table("tenant", "call carried out -> reply written from its result",
                  title="actions: the back office's results in the replies")
    for tenant_id, line in shown:
        table.add_row(tenant_id, line)
    return table
