"""Header-constrained greedy generation with transformers (torch imported lazily): what the trainer's
scoring and the resolver's HF engine both run, so that a holdout score and a served answer come from
the same decoding.

Each row of a batch has its own HeaderConstraint (tenants differ in their action names); while a row is
inside its header only the trie's next tokens keep their logits. The scores transformers returns are the
processed ones, so a header token's log-softmax is its probability renormalised over the allowed tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from clonedesk.core.domain.decision_header import HeaderConstraint, header_logprob


def header_constraint(tokenizer, action_names: Sequence[str]) -> HeaderConstraint | None:
    return HeaderConstraint.for_tokenizer(
        lambda text: tokenizer(text, add_special_tokens=False)["input_ids"], action_names)


class HeaderConstraints:
    """The header trie of each set of action names, built once per set for one tokenizer (an engine's
    tenants keep their names for a while)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._by_names: dict[tuple[str, ...], HeaderConstraint | None] = {}

    def get(self, action_names: Sequence[str] | None) -> HeaderConstraint | None:
        if action_names is None:
            return None
        key = tuple(action_names)
        if key not in self._by_names:
            self._by_names[key] = header_constraint(self.tokenizer, key)
        return self._by_names[key]


class HeaderLogitsProcessor:
    """A transformers LogitsProcessor: rows still writing their header may only follow their trie."""

    def __init__(self, constraints: Sequence[HeaderConstraint | None], prompt_length: int):
        self.constraints = list(constraints)
        self.prompt_length = prompt_length

    def __call__(self, input_ids, scores):
        import torch

        for row, constraint in enumerate(self.constraints):
            if constraint is None:
                continue
            allowed = constraint.allowed(input_ids[row, self.prompt_length:].tolist())
            if allowed is None:
                continue
            keep = torch.full_like(scores[row], float("-inf"))
            keep[allowed] = scores[row, allowed]
            scores[row] = keep
        return scores


@dataclass(frozen=True)
class GeneratedAnswer:
    text: str
    token_ids: tuple[int, ...]
    token_logprobs: tuple[float, ...]
    header_logprob: float | None  # None when unconstrained and no header was recognised


def generate_answers(model, tokenizer, input_ids, attention_mask, constraints: Sequence[HeaderConstraint | None],
                     *, max_new_tokens: int, **generate_kwargs) -> list[GeneratedAnswer]:
    """Greedy answers of a left-padded batch, each row under its constraint, until end of turn."""
    import torch

    prompt_length = input_ids.shape[1]
    processors = ([HeaderLogitsProcessor(constraints, prompt_length)]
                  if any(c is not None for c in constraints) else [])
    with torch.inference_mode():
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                             do_sample=False, num_beams=1, output_scores=True, return_dict_in_generate=True,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                             logits_processor=processors or None, **generate_kwargs)
    generated = out.sequences[:, prompt_length:]
    logprobs = torch.stack([torch.log_softmax(s.float(), dim=-1) for s in out.scores], dim=1)
    chosen = logprobs.gather(-1, generated.unsqueeze(-1)).squeeze(-1)
    eos = tokenizer.eos_token_id
    answers = []
    for row, constraint in enumerate(constraints):
        tokens = generated[row].tolist()
        # Up to and including the first end-of-sequence: the rest is padding of the batch.
        length = tokens.index(eos) + 1 if eos in tokens else len(tokens)
        tokens = tokens[:length]
        row_logprobs = tuple(chosen[row, :length].tolist())
        header = header_logprob(row_logprobs, constraint.header_length(tokens)) if constraint is not None else None
        answers.append(GeneratedAnswer(tokenizer.decode(tokens, skip_special_tokens=True), tuple(tokens),
                                       row_logprobs, header))
    return answers
