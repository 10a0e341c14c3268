"""Our chrF against sacrebleu's (the reference implementation) on real replies and on random text."""

import random

import sacrebleu
from sacrebleu.metrics import CHRF

from clonedesk.core.domain.chrf import chrf_score, chrf_statistics, corpus_chrf, sentence_chrf
from clonedesk.trainer.domain.metrics import chrf_from_statistics

PAIRS = [
    ("Your balance is $1,024.50 in checking.", "The balance in your checking account is $1,024.50."),
    ("I have booked the car for March 3rd.", "Your car is reserved for the 3rd of March, pick-up at 10 am."),
    ("", "Anything else I can help with?"),
    ("Anything else?", ""),
    ("", ""),
    ("a", "a"),
    ("ok", "no"),
    ("Sí, la reserva está confirmada ✓", "La reserva está confirmada."),
]


def _random_text(rng: random.Random) -> str:
    alphabet = "abcde fgh  ij.,!?é$1"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))


def test_sentence_scores_equal_sacrebleus():
    rng = random.Random(3)
    pairs = PAIRS + [(_random_text(rng), _random_text(rng)) for _ in range(300)]
    for hypothesis, reference in pairs:
        assert sentence_chrf(hypothesis, reference) == sacrebleu.sentence_chrf(hypothesis, [reference]).score, \
            (hypothesis, reference)


def test_statistics_and_corpus_scores_equal_sacrebleus():
    rng = random.Random(5)
    hypotheses = [h for h, _ in PAIRS] + [_random_text(rng) for _ in range(50)]
    references = [r for _, r in PAIRS] + [_random_text(rng) for _ in range(50)]
    theirs = CHRF()._extract_corpus_statistics(hypotheses, [references])
    assert [chrf_statistics(h, r) for h, r in zip(hypotheses, references)] == [list(row) for row in theirs]
    assert corpus_chrf(hypotheses, references) == sacrebleu.corpus_chrf(hypotheses, [references]).score
    rows = [chrf_statistics(h, r) for h, r in zip(hypotheses, references)]
    assert chrf_from_statistics(rows) == chrf_score([sum(c) for c in zip(*rows)])


def test_a_closer_reply_scores_higher():
    reference = "Your car is reserved for March 3rd."
    assert sentence_chrf("Your car is reserved for March 3rd.", reference) == 100.0
    assert sentence_chrf("Your car is reserved.", reference) > sentence_chrf("Please hold.", reference) >= 0.0
