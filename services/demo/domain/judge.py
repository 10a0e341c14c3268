"""How a demo customer judges an AI answer (pure, seeded): against what the human agent did at the same
point of the recorded dialogue.

An answer is *right* when its decision is the agent's (for a call, the same call name) and its reply is
not far from the agent's words (sentence chrF at least REPLY_CHRF_RIGHT); its *quality* (0..1) is half
the decision, half the reply's similarity. A right answer lets the dialogue go on as recorded. A wrong
one makes the customer push back, the more likely to give up on the AI the worse the answer was: they
ask for a human (the resolver must hand the ticket over), or repeat their message once; a second wrong
answer to the same message always ends with a request for a human. The rating at the end follows how
the conversation went. Seeded per ticket and message, so a run is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from clonedesk.core.domain.chrf import sentence_chrf
from clonedesk.core.domain.decision_header import action_call_name
from clonedesk.v1 import common_pb2

# A reply this close to the agent's words (chrF 0..100) reads as the same answer: SGD's agents word the
# same act in many ways, and retrieval's replies score about 25 on average.
REPLY_CHRF_RIGHT = 15.0
REPLY_CHRF_FULL = 40.0  # similarity counts fully from here
# A wrong answer: the chance the customer asks for a person at once, from BASE (a near miss) to BASE+SPAN.
GIVE_UP_BASE, GIVE_UP_SPAN = 0.25, 0.5
PUSH_BACK = ("That's not what I asked. ", "No, that doesn't help. ", "You misunderstood me. ")
FED_UP = ("This isn't working, I want to talk to a person.", "Please get me a human agent.",
          "Let me speak to a real person, please.")
# The rating after the solve, by how the conversation went.
CSAT_BY_COURSE = {
    "all right": {5: 0.60, 4: 0.30, 3: 0.10},
    "one push-back": {5: 0.15, 4: 0.35, 3: 0.30, 2: 0.15, 1: 0.05},
    "human needed": {4: 0.15, 3: 0.30, 2: 0.30, 1: 0.25},
}


class Move(str, Enum):
    GO_ON = "answer judged right: the dialogue goes on"
    REPEAT = "answer judged wrong: the customer repeats themselves"
    ASK_FOR_HUMAN = "answer judged wrong: the customer asks for a human"


@dataclass(frozen=True)
class AgentTurn:
    decision: int
    action: str  # the call the agent made, "" if none
    reply: str


@dataclass(frozen=True)
class Verdict:
    right: bool
    quality: float  # 0..1
    decision_right: bool
    reply_chrf: float


@dataclass(frozen=True)
class Reaction:
    move: Move
    message: str  # what the customer writes next ("" to go on with the dialogue's own next message)
    verdict: Verdict


def reply_similarity(reply: str, reference: str) -> float:
    if not reply.strip() or not reference.strip():
        return 0.0
    return sentence_chrf(reply, reference)


def judge(decision: int, action: str, reply: str, agent: AgentTurn) -> Verdict:
    decision_right = decision == agent.decision and (
        decision != common_pb2.ACTION or action_call_name(action) == action_call_name(agent.action))
    similarity = reply_similarity(reply, agent.reply)
    quality = 0.5 * decision_right + 0.5 * min(similarity / REPLY_CHRF_FULL, 1.0)
    return Verdict(decision_right and similarity >= REPLY_CHRF_RIGHT, round(quality, 4), decision_right,
                   round(similarity, 2))


def react(verdict: Verdict, message: str, repeated_already: bool, rng: random.Random) -> Reaction:
    """The customer's next move after an AI answer to `message`."""
    if verdict.right:
        return Reaction(Move.GO_ON, "", verdict)
    if repeated_already or rng.random() < GIVE_UP_BASE + GIVE_UP_SPAN * (1.0 - verdict.quality):
        return Reaction(Move.ASK_FOR_HUMAN, rng.choice(FED_UP), verdict)
    return Reaction(Move.REPEAT, rng.choice(PUSH_BACK) + message, verdict)


def judge_rng(seed: int, tenant_id: str, ticket_id: str, index: int) -> random.Random:
    return random.Random(f"{seed}:{tenant_id}:{ticket_id}:judge:{index}")


def course_of(push_backs: int, human_needed: bool) -> str:
    if human_needed:
        return "human needed"
    return "all right" if push_backs == 0 else "one push-back"


def rating(course: str, rng: random.Random) -> int:
    scores, weights = zip(*CSAT_BY_COURSE[course].items())
    return rng.choices(scores, weights)[0]
