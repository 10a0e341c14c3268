"""Scoring on a tenant's holdout: what a model (base, or base + adapter) or the retrieval baseline
answers for each held-out agent turn, as ScoredTurn records for domain.metrics."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Sequence

from clonedesk.core.domain.action_calls import ActionAnswer, MalformedCall, parse_action_call
from clonedesk.core.adapters import answers_from_results, trained_action_names, trained_context_turns
from clonedesk.core.domain.confidence import Calibration
from clonedesk.core.domain.conversation_format import (DEFAULT_CONTEXT_TURNS, AgentTurn, after_action_messages,
                                                has_action_result, parse_target, reply_after_action)
from clonedesk.trainer.adapters.lora import generate_for_messages, generate_samples, load_model
from clonedesk.trainer.adapters.training_batches import sample_messages
from clonedesk.trainer.adapters.retrieval import RetrievalBaseline
from clonedesk.trainer.domain.metrics import ScoredTurn, action_name
from clonedesk.v1 import common_pb2


def scored(sample, answer: AgentTurn, confidence: float | None = None) -> ScoredTurn:
    return ScoredTurn(ticket_id=sample.ticket_id, category=sample.category, true_decision=sample.decision,
                      true_action=sample.action, true_reply=sample.reply, predicted_decision=answer.decision,
                      predicted_action=answer.action, predicted_reply=answer.reply, confidence=confidence)


def score_model(base_model: str, adapter_dir: Path | None, holdout: Sequence, *,
                max_new_tokens: int = 128, context_turns: int | None = None,
                action_names: Sequence[str] | None = None) -> list[ScoredTurn]:
    """What the model answers for each held-out turn, from the prompts the adapter was trained on (its
    recorded context turns, or `context_turns`), its header constrained to the four decisions and the
    adapter's recorded action names (or `action_names`). Each turn's confidence is the raw probability
    of its header (uncalibrated: see `calibrated`). The adapter is merged into the weights first: the
    same answers, faster."""
    model, tokenizer = load_model(base_model, adapter_dir)
    if adapter_dir is not None:
        model = model.merge_and_unload()
    turns = context_turns if context_turns is not None else (
        trained_context_turns(adapter_dir) if adapter_dir is not None else None)
    names = action_names if action_names is not None else (
        trained_action_names(adapter_dir) if adapter_dir is not None else None)
    context = turns if turns is not None else DEFAULT_CONTEXT_TURNS
    answers = generate_samples(model, tokenizer, holdout, max_new_tokens=max_new_tokens, context_turns=context,
                               action_names=names)
    parsed = [parse_target(a.text) for a in answers]
    if adapter_dir is not None and answers_from_results(adapter_dir):
        parsed = replies_after_results(model, tokenizer, holdout, parsed, context, max_new_tokens)
    return [scored(sample, turn, math.exp(a.header_logprob) if a.header_logprob is not None else None)
            for sample, turn, a in zip(holdout, parsed, answers)]


def replies_after_results(model, tokenizer, holdout: Sequence, parsed: list[AgentTurn], context_turns: int,
                          max_new_tokens: int) -> list[AgentTurn]:
    """Where the model called what the agent called and the history recorded the back office's answer,
    the reply it writes after that answer, as the resolver asks for it once the call is carried out."""
    asked = [i for i, (sample, turn) in enumerate(zip(holdout, parsed))
             if turn.decision == common_pb2.ACTION and has_action_result(sample)
             and action_name(turn.action) == action_name(sample.action)]
    if not asked:
        return parsed
    prompts = [after_action_messages(sample_messages(holdout[i], context_turns), common_pb2.ACTION,
                                     _canonical_call(parsed[i].action), ActionAnswer.from_json(holdout[i].action_result))
               for i in asked]
    replies = generate_for_messages(model, tokenizer, prompts, max_new_tokens=max_new_tokens)
    out = list(parsed)
    for i, reply in zip(asked, replies):
        out[i] = dataclasses.replace(parsed[i], reply=reply_after_action(reply.text))
    return out


def _canonical_call(action: str) -> str:
    try:
        return parse_action_call(action).text()
    except MalformedCall:
        return action


def calibrated(turns: Sequence[ScoredTurn], calibration: Calibration) -> list[ScoredTurn]:
    """The same turns, their raw header probability replaced by the calibrated one."""
    return [dataclasses.replace(t, confidence=calibration.apply(t.confidence) if t.confidence is not None else 0.0)
            for t in turns]


def score_retrieval(history: Sequence, holdout: Sequence) -> list[ScoredTurn]:
    baseline = RetrievalBaseline(history)
    return [scored(sample, baseline.answer(sample.context)) for sample in holdout]


def evaluation_sample(holdout: Sequence, limit: int) -> list:
    """At most `limit` held-out turns, whole tickets first-come (so the resolution rate stays per
    ticket), the same every time for the same holdout."""
    chosen, tickets = [], set()
    for sample in holdout:
        if sample.ticket_id not in tickets and len(chosen) >= limit:
            continue
        tickets.add(sample.ticket_id)
        chosen.append(sample)
    return chosen


HOLDOUT_SCORES_FILE = "holdout_scores.json"


def save_scored(path: Path, holdout: Sequence, turns: Sequence[ScoredTurn]) -> None:
    """The raw scored turns of an adapter beside it, keyed by sample id, so that a preview of the same
    holdout need not generate them again."""
    rows = {s.sample_id: dataclasses.asdict(t) for s, t in zip(holdout, turns)}
    Path(path).write_text(json.dumps(rows))


def load_scored(path: Path, holdout: Sequence) -> list[ScoredTurn] | None:
    """The saved raw scored turns of exactly these samples, or None when any is missing."""
    try:
        rows = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rows, dict) or any(s.sample_id not in rows for s in holdout):
        return None
    try:
        return [ScoredTurn(**rows[s.sample_id]) for s in holdout]
    except TypeError:
        return None


def score_model_reusing(base_model: str, adapter_dir: Path, holdout: Sequence, *,
                        max_new_tokens: int = 128) -> list[ScoredTurn]:
    """score_model of an adapter, generating only the turns its saved holdout scores lack (an adapter's
    weights never change, so a turn it was scored on keeps its answer); saves the union back."""
    path = Path(adapter_dir) / HOLDOUT_SCORES_FILE
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        saved = {}
    saved = saved if isinstance(saved, dict) else {}
    missing = [s for s in holdout if s.sample_id not in saved]
    if missing:
        fresh = score_model(base_model, adapter_dir, missing, max_new_tokens=max_new_tokens)
        saved.update({s.sample_id: dataclasses.asdict(t) for s, t in zip(missing, fresh)})
        path.write_text(json.dumps(saved))
    turns = load_scored(path, holdout)
    if turns is None:  # a saved row of another shape (an older version): score them all afresh
        turns = score_model(base_model, adapter_dir, holdout, max_new_tokens=max_new_tokens)
        save_scored(path, holdout, turns)
    return turns


def evaluation_tickets(holdout: Sequence, tickets: int) -> list:
    """Every held-out turn of the first `tickets` held-out tickets (first come), in holdout order."""
    chosen: set[str] = set()
    out = []
    for sample in holdout:
        if sample.ticket_id not in chosen:
            if len(chosen) >= tickets:
                continue
            chosen.add(sample.ticket_id)
        out.append(sample)
    return out
