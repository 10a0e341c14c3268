"""SGD dialogues → HelpdeskEvents (one dialogue = one resolved ticket); the decision each SYSTEM turn
stands for follows the rules in core/domain/sgd.py."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from clonedesk.core.domain.action_calls import ActionAnswer
from clonedesk.ingest.domain.events import Kind, WrongShape, new_event, require
from clonedesk.core.domain.ids import event_id, stable_id
from clonedesk.core.domain.sgd import decide
from clonedesk.core.domain.topics import TRAINING_SAMPLES
from clonedesk.ingest.domain.conversation import apply
from clonedesk.v1 import common_pb2, training_pb2

SOURCE = "sgd"
# Dialogues carry no times; each gets a fixed, id-derived start so a re-import writes identical events.
_EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)


def call_result(frames: list) -> str:
    """The recorded answer to the turn's call (`service_results`), as core.domain.action_calls.ActionAnswer JSON;
    "" when the turn made no call. SGD records no failed answers: a NOTIFY_FAILURE turn escalates."""
    for frame in frames or ():
        if frame.get("service_call"):
            results = frame.get("service_results") or []
            if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
                raise WrongShape("service_results must be a list of objects")
            return ActionAnswer(True, tuple({str(k): str(v) for k, v in r.items()} for r in results)).to_json()
    return ""


def _intent(turns: list) -> str:
    for turn in turns:
        for frame in turn.get("frames") or ():
            intent = (frame.get("state") or {}).get("active_intent")
            if intent and intent != "NONE":
                return intent
    return ""


def normalise_dialogue(tenant_id: str, dialogue: dict) -> list:
    """One dialogue → TICKET_CREATED, a MESSAGE per turn, and STATUS_CHANGED to SOLVED at the end."""
    if not isinstance(dialogue, dict):
        raise WrongShape("a dialogue must be a JSON object")
    dialogue_id = str(require(dialogue, "dialogue_id"))
    turns = require(dialogue, "turns")
    if not isinstance(turns, list) or not turns:
        raise WrongShape("turns must be a non-empty list")
    start = _EPOCH + timedelta(seconds=int(stable_id(dialogue_id)[:6], 16))
    services = dialogue.get("services") or []
    category = _intent(turns) or (services[0] if services else "")
    common = dict(tenant_id=tenant_id, ticket_id=dialogue_id, source=common_pb2.IMPORT, category=category,
                  attributes={"import": "sgd", "service": services[0] if services else ""})
    first_text = str(require(turns[0], "utterance"))
    events = [new_event(event_id=event_id(SOURCE, tenant_id, dialogue_id, "created"), kind=Kind.TICKET_CREATED,
                        author_role=common_pb2.CUSTOMER, status=common_pb2.NEW, body=first_text,
                        subject=first_text[:80], occurred_at=start, **common)]
    for index, turn in enumerate(turns):
        speaker = require(turn, "speaker")
        text = str(require(turn, "utterance"))
        at = start + timedelta(seconds=30 * (index + 1))
        if speaker == "USER":
            role, decision, action, result = common_pb2.CUSTOMER, common_pb2.DECISION_UNSPECIFIED, "", ""
        elif speaker == "SYSTEM":
            role = common_pb2.AGENT
            decision, action = decide(turn.get("frames") or [])
            result = call_result(turn.get("frames") or []) if decision == common_pb2.ACTION else ""
        else:
            raise WrongShape(f"turn {index}: unknown speaker {speaker!r}")
        events.append(new_event(event_id=event_id(SOURCE, tenant_id, dialogue_id, "turn", index), kind=Kind.MESSAGE,
                                author_role=role, body=text, decision=decision, action=action, occurred_at=at,
                                action_result=result,
                                author_id="customer" if role == common_pb2.CUSTOMER else "agent", **common))
    events.append(new_event(event_id=event_id(SOURCE, tenant_id, dialogue_id, "solved"), kind=Kind.STATUS_CHANGED,
                            author_role=common_pb2.SYSTEM, status=common_pb2.SOLVED,
                            occurred_at=start + timedelta(seconds=30 * (len(turns) + 1)), **common))
    return events


def dialogue_samples(tenant_id: str, dialogue: dict) -> list[training_pb2.TrainingSample]:
    """One TrainingSample per agent turn, exactly as the product makes them: the dialogue normalised to
    helpdesk events and run through ingest's conversation reducer (same decisions, same PII scrubbing)."""
    state, samples = None, []
    for event in normalise_dialogue(tenant_id, dialogue):
        state, emits = apply(state, event)
        samples += [emit.message for emit in emits if emit.topic == TRAINING_SAMPLES]
    return samples
