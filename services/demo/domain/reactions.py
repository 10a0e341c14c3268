"""What the customers of the live tickets do (pure, seeded).

From the dialogue, where it says: the customer's first message, their follow-ups (the next USER turns)
and their closing message ("No thanks, that's all" reads as a confirmation), and the human agent's
words when a human takes a ticket over (the dialogue's SYSTEM turns).

Judged (domain/judge.py): how the customer takes each AI answer — compared with what the human agent
did at that point of the dialogue (`answers`), a right one lets the dialogue go on, a wrong one makes the
customer repeat themselves or ask for a human — and the rating, which follows how it went.

Simulated, because SGD has none of it: whether a human takes the ticket over after an AI reply, the
solve at the end, a reopen, and whether the customer rates at all. Each ticket draws its fate from its
own seeded generator, so a run is reproducible and adding a ticket changes no other ticket's fate.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from clonedesk.demo.domain.judge import AgentTurn
from clonedesk.demo.domain.zendesk_events import intent_of
from clonedesk.core.domain.sgd import decide
from clonedesk.v1 import common_pb2

TAKEOVER_PROBABILITY = 0.15
REOPEN_PROBABILITY = 0.10
RATED_PROBABILITY = 0.65
CSAT_WEIGHTS = {5: 0.45, 4: 0.30, 3: 0.10, 2: 0.07, 1: 0.08}
# Some customers ask for a person part-way (SGD's never do): the resolver must hand those over.
ASKS_FOR_HUMAN_PROBABILITY = 0.10
HUMAN_REQUESTS = ("Can I talk to a real person please?", "I'd like to speak to a human agent.",
                  "Please connect me to a representative.")


class Origin(str, Enum):
    DIALOGUE = "from the dialogue"
    SIMULATED = "simulated (seeded)"
    JUDGED = "judged: the AI's answer against the agent's"


class Reaction(str, Enum):
    FIRST_MESSAGE = "customer's first message"
    FOLLOW_UP = "customer follow-up"
    CLOSING_CONFIRMS = "closing message, a confirmation"
    CLOSING_OTHER = "closing message, answered again"
    AGENT_AFTER_ESCALATION = "agent reply after an AI escalation"
    TAKEOVER = "human take-over"
    SOLVE = "ticket solved"
    REOPEN = "ticket reopened"
    CSAT = "CSAT rating"
    ASKS_FOR_HUMAN = "customer asks for a human"
    ANSWER_RIGHT = "AI answer judged right"
    REPEATS = "AI answer judged wrong: customer repeats"
    FED_UP = "AI answer judged wrong: customer asks for a human"


ORIGIN = {
    Reaction.FIRST_MESSAGE: Origin.DIALOGUE, Reaction.FOLLOW_UP: Origin.DIALOGUE,
    Reaction.CLOSING_CONFIRMS: Origin.DIALOGUE, Reaction.CLOSING_OTHER: Origin.DIALOGUE,
    Reaction.AGENT_AFTER_ESCALATION: Origin.DIALOGUE, Reaction.TAKEOVER: Origin.SIMULATED,
    Reaction.SOLVE: Origin.SIMULATED, Reaction.REOPEN: Origin.SIMULATED, Reaction.CSAT: Origin.SIMULATED,
    Reaction.ASKS_FOR_HUMAN: Origin.SIMULATED, Reaction.ANSWER_RIGHT: Origin.JUDGED,
    Reaction.REPEATS: Origin.JUDGED, Reaction.FED_UP: Origin.JUDGED,
}


@dataclass(frozen=True)
class Fate:
    takeover_after: int | None  # a human takes over after the AI's n-th reply (1-based); None: never
    reopen: bool  # the customer reopens the ticket after it was solved
    csat: int | None  # the rating given after the solve; None: no rating
    # The customer message (0-based, never the first) that is replaced by a request for a person.
    asks_for_human_at: int | None = None
    human_request: str = ""


@dataclass(frozen=True)
class LiveScript:
    ticket_id: str
    category: str
    customer_messages: tuple[str, ...]  # first message, follow-ups, closing message
    agent_turns: tuple[str, ...]  # what the human agent said in the dialogue, in order
    fate: Fate
    # What the agent did right after each customer message (decision, call, words): what an AI answer to
    # it is judged against. Empty: the answers are not judged (the dialogue goes on whatever they say).
    answers: tuple[AgentTurn, ...] = ()

    @property
    def requester_id(self) -> str:
        return f"customer-{self.ticket_id}"

    def answer_to(self, index: int) -> AgentTurn | None:
        return self.answers[index] if index < len(self.answers) else None

    def agent_turn(self, index: int) -> str:
        """The dialogue's agent turn answering customer message `index` (the last one past the end)."""
        return self.agent_turns[min(index, len(self.agent_turns) - 1)]


def draw_fate(rng: random.Random, replies_expected: int) -> Fate:
    takeover = None
    if replies_expected > 1 and rng.random() < TAKEOVER_PROBABILITY:
        takeover = rng.randint(1, replies_expected - 1)  # never after the last: nothing left to take over
    reopen = takeover is None and rng.random() < REOPEN_PROBABILITY
    csat = None
    if rng.random() < RATED_PROBABILITY:
        scores, weights = zip(*CSAT_WEIGHTS.items())
        csat = rng.choices(scores, weights)[0]
    # Drawn last, so that the fates drawn before this existed are unchanged.
    asks_at, request = None, ""
    if replies_expected > 1 and rng.random() < ASKS_FOR_HUMAN_PROBABILITY:
        asks_at, request = rng.randint(1, replies_expected - 1), rng.choice(HUMAN_REQUESTS)
    return Fate(takeover, reopen, csat, asks_at, request)


def live_script(dialogue: dict, max_messages: int, seed: int, tenant_id: str) -> LiveScript:
    """The script of one live ticket: at most `max_messages` customer messages, the closing one kept."""
    if max_messages < 2:
        raise ValueError("a live ticket needs room for a first and a closing message")
    turns = dialogue["turns"]
    spoken = [i for i, t in enumerate(turns) if t["speaker"] == "USER" and t["utterance"].strip()]
    agent = [t["utterance"] for t in turns if t["speaker"] == "SYSTEM" and t["utterance"].strip()]
    if not spoken or not agent:
        raise ValueError(f"dialogue {dialogue.get('dialogue_id')} has no customer or agent turn")
    chosen = spoken if len(spoken) <= max_messages else spoken[:max_messages - 1] + [spoken[-1]]
    messages = [turns[i]["utterance"] for i in chosen]
    answers = tuple(_answer_after(turns, i) for i in chosen)
    ticket_id = str(dialogue["dialogue_id"])
    rng = random.Random(f"{seed}:{tenant_id}:{ticket_id}")
    fate = draw_fate(rng, len(messages))
    if fate.asks_for_human_at is not None:  # the right answer to a request for a person: hand it over
        at = fate.asks_for_human_at
        messages = messages[:at] + [fate.human_request] + messages[at + 1:]
        answers = answers[:at] + (AgentTurn(common_pb2.ESCALATE, "", ""),) + answers[at + 1:]
    return LiveScript(ticket_id, intent_of(dialogue), tuple(messages), tuple(agent), fate, answers)


def _answer_after(turns: list, user_index: int) -> AgentTurn:
    """The agent's turn right after the customer's (the dialogue's SYSTEM turn), as the trainer labels it."""
    for turn in turns[user_index + 1:]:
        if turn["speaker"] == "SYSTEM":
            decision, action = decide(turn.get("frames") or [])
            return AgentTurn(decision, action, turn["utterance"])
    return AgentTurn(common_pb2.RESOLVE, "", "")
