"""chrF (Popović 2015), the character n-gram F-score every reply is scored with, in the form sacrebleu
computes by default (character 1- to 6-grams with whitespace removed, no word n-grams, beta 2, the
effective-order average of precision and recall over the orders both sides have), written here so the
pure cores need no third-party package. `tests/core/test_chrf.py` holds it to sacrebleu's figures.

Statistics are 18 counts a sentence pair (for each order: hypothesis n-grams, reference n-grams,
matches); they add up over sentences, and a corpus score is the score of their sum.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

CHAR_ORDER = 6
BETA = 2


def _ngram_counts(text: str) -> list[Counter]:
    squeezed = "".join(text.split())
    return [Counter(squeezed[i:i + n] for i in range(len(squeezed) - n + 1)) for n in range(1, CHAR_ORDER + 1)]


def chrf_statistics(hypothesis: str, reference: str) -> list[int]:
    """[hypothesis n-grams, reference n-grams, matched] for n = 1..6, flattened."""
    row: list[int] = []
    for hyp, ref in zip(_ngram_counts(hypothesis), _ngram_counts(reference)):
        matched = sum(min(count, ref[gram]) for gram, count in hyp.items() if gram in ref)
        # An order the reference has no n-gram of counts no hypothesis n-grams either.
        row += [sum(hyp.values()) if ref else 0, sum(ref.values()), matched]
    return row


def chrf_score(statistics: Sequence[int]) -> float:
    """0..100 from (summed) statistics."""
    factor = BETA ** 2
    precision_sum = recall_sum = 0.0
    orders = 0
    for n in range(CHAR_ORDER):
        hyp, ref, matched = statistics[3 * n:3 * n + 3]
        if hyp > 0 and ref > 0:
            precision_sum += matched / hyp
            recall_sum += matched / ref
            orders += 1
    if not orders:
        return 0.0
    precision, recall = precision_sum / orders, recall_sum / orders
    if not precision + recall:
        return 0.0
    score = (1 + factor) * precision * recall
    score /= factor * precision + recall
    return 100 * score


def sentence_chrf(hypothesis: str, reference: str) -> float:
    return chrf_score(chrf_statistics(hypothesis, reference))


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    rows = [chrf_statistics(h, r) for h, r in zip(hypotheses, references, strict=True)]
    return chrf_score([sum(column) for column in zip(*rows)]) if rows else 0.0
