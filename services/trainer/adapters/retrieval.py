"""The retrieval baseline: answer with the agent turn of the most similar historical conversation
moment (TF-IDF cosine over the last turns), the way retrieval-based support bots work. It is what the
accuracy preview compares an adapter against."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

from clonedesk.core.domain.conversation_format import AgentTurn
from clonedesk.v1 import common_pb2

_WORD = re.compile(r"[a-z0-9$]+")
QUERY_TURNS = 2


def _turns(context) -> list[tuple[int, str]]:
    return [(t.role, t.text) if hasattr(t, "role") else tuple(t) for t in context]


def query_text(context) -> str:
    """The last customer turn and the agent turn before it: what a retrieval bot matches on."""
    return " ".join(text for _, text in _turns(context)[-QUERY_TURNS:])


def _terms(text: str) -> Counter:
    return Counter(_WORD.findall(text.lower()))


class RetrievalBaseline:
    def __init__(self, history: Sequence):
        """`history`: the tenant's trainable samples (never its holdout)."""
        self._answers = [AgentTurn(s.decision, s.action, s.reply) for s in history]
        term_counts = [_terms(query_text(s.context)) for s in history]
        documents = len(term_counts)
        frequency: Counter = Counter()
        for terms in term_counts:
            frequency.update(terms.keys())
        self._idf = {term: math.log((1 + documents) / (1 + df)) + 1.0 for term, df in frequency.items()}
        self._vectors = [self._vector(terms) for terms in term_counts]

    def _vector(self, terms: Counter) -> dict[str, float]:
        weights = {t: c * self._idf.get(t, 0.0) for t, c in terms.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {t: w / norm for t, w in weights.items()}

    def answer(self, context) -> AgentTurn:
        if not self._answers:
            return AgentTurn(common_pb2.ESCALATE, "", "")
        query = self._vector(_terms(query_text(context)))
        best, best_score = 0, -1.0
        for index, vector in enumerate(self._vectors):
            score = sum(weight * vector.get(term, 0.0) for term, weight in query.items())
            if score > best_score:
                best, best_score = index, score
        return self._answers[best]
