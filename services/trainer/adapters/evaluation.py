"""Scoring on a tenant's holdout: what a model (base, or base + adapter) or the retrieval baseline
answers for each held-out agent turn, as ScoredTurn records for domain.metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from clonedesk.core.adapters import trained_context_turns
from clonedesk.core.conversation_format import DEFAULT_CONTEXT_TURNS, AgentTurn, parse_target
from clonedesk.trainer.adapters.lora import generate_targets, load_model
from clonedesk.trainer.adapters.retrieval import RetrievalBaseline
from clonedesk.trainer.domain.metrics import ScoredTurn


def scored(sample, answer: AgentTurn) -> ScoredTurn:
    return ScoredTurn(ticket_id=sample.ticket_id, category=sample.category, true_decision=sample.decision,
                      true_action=sample.action, true_reply=sample.reply, predicted_decision=answer.decision,
                      predicted_action=answer.action, predicted_reply=answer.reply)


def score_model(base_model: str, adapter_dir: Path | None, holdout: Sequence, *,
                max_new_tokens: int = 64, context_turns: int | None = None) -> list[ScoredTurn]:
    """What the model answers for each held-out turn, from the prompts the adapter was trained on (its
    recorded context turns, or `context_turns`). The adapter is merged into the weights first: the same answers, faster."""
    model, tokenizer = load_model(base_model, adapter_dir)
    if adapter_dir is not None:
        model = model.merge_and_unload()
    turns = context_turns if context_turns is not None else (
        trained_context_turns(adapter_dir) if adapter_dir is not None else None)
    texts = generate_targets(model, tokenizer, holdout, max_new_tokens=max_new_tokens,
                             context_turns=turns if turns is not None else DEFAULT_CONTEXT_TURNS)
    return [scored(sample, parse_target(text)) for sample, text in zip(holdout, texts)]


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
