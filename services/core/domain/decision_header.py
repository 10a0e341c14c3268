"""The decision header a model may write, as token sequences (pure; no I/O).

A generated answer starts with `[decision=… action=Name(…)]` (core.domain.conversation_format). Left free, a
model can write a decision that does not exist or call an action the tenant never used; constrained, it
chooses between the only headers there are:

    [decision=RESOLVE]    [decision=ASK]    [decision=ESCALATE]    [decision=ESCALATE action=Name(
    [decision=ACTION action=Name(        for every action name of the tenant's history

Once one of them is complete, the model goes on freely (an action's parameters, then the reply). The
product of the header tokens' probabilities, renormalised over the allowed tokens at each step, is the
model's probability of its decision and action: the confidence the resolver calibrates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from clonedesk.v1 import common_pb2

PLAIN_DECISIONS = ("RESOLVE", "ASK", "ESCALATE")


def action_call_name(action: str) -> str:
    """`FindHotel(city=Paris)` -> `FindHotel` (as written, case kept)."""
    return action.split("(", 1)[0].strip()


def history_action_names(samples: Iterable) -> list[str]:
    """The action names an agent of this history called (ACTION or a failed call), sorted."""
    names = {action_call_name(s.action) for s in samples
             if s.decision in (common_pb2.ACTION, common_pb2.ESCALATE) and s.action}
    return sorted(name for name in names if name and "]" not in name and "\n" not in name)


def decision_prefix(header: str) -> str:
    """The part of a written header that fixes its decision and action name: the whole plain header,
    or up to the action's opening parenthesis."""
    if " action=" in header:
        return header.split("(", 1)[0] + "(" if "(" in header else header
    return header.strip()


def header_texts(action_names: Sequence[str]) -> list[str]:
    """Every header prefix that fixes a decision (and action name)."""
    texts = [f"[decision={name}]" for name in PLAIN_DECISIONS]
    for name in action_names:
        texts.append(f"[decision=ACTION action={name}(")
        texts.append(f"[decision=ESCALATE action={name}(")
    return texts


@dataclass
class _Node:
    children: dict[int, "_Node"] = field(default_factory=dict)
    terminal: bool = False


class HeaderConstraint:
    """A trie of the headers' token ids: which tokens may come next after a generated prefix."""

    def __init__(self, sequences: Iterable[Sequence[int]]):
        self._root = _Node()
        for tokens in sequences:
            node = self._root
            for token in tokens:
                node = node.children.setdefault(int(token), _Node())
            node.terminal = True

    @classmethod
    def for_tokenizer(cls, encode: Callable[[str], list[int]], action_names: Sequence[str]) -> "HeaderConstraint | None":
        """The constraint for these action names, or None when the tokenizer does not split a header
        where it ends (the header's tokens must be a prefix of the tokens of a whole answer)."""
        sequences = []
        for text in header_texts(action_names):
            tokens = encode(text)
            follow = "\nHello" if text.endswith("]") else "x=1)]\nHello"
            if not tokens or encode(text + follow)[: len(tokens)] != tokens:
                return None
            sequences.append(tokens)
        return cls(sequences)

    def allowed(self, generated: Sequence[int]) -> list[int] | None:
        """The tokens allowed next after `generated` (the answer's tokens so far); None once a whole
        header was written (or the prefix left the trie, which constrained decoding never does)."""
        node = self._root
        for token in generated:
            if node.terminal:
                return None
            node = node.children.get(int(token))
            if node is None:
                return None
        return None if node.terminal else sorted(node.children)

    def header_length(self, generated: Sequence[int]) -> int:
        """How many of `generated`'s first tokens are the header (0 when it does not start with one)."""
        node = self._root
        for index, token in enumerate(generated):
            node = node.children.get(int(token))
            if node is None:
                return 0
            if node.terminal:
                return index + 1
        return 0


def header_logprob(token_logprobs: Sequence[float], header_tokens: int) -> float | None:
    """The log-probability of the header (None when there was none)."""
    if header_tokens <= 0 or header_tokens > len(token_logprobs):
        return None
    return float(sum(token_logprobs[:header_tokens]))
