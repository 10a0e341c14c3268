"""The Schema-Guided Dialogue format's rules: the decision an annotated SYSTEM turn stands for, and the
service calls a dialogue recorded (ingest's SGD import, the helpdesk simulator's back office and the demo
read dialogues the same way).

Decision rules, first match wins (tests/ingest/test_sgd.py):
  1. NOTIFY_FAILURE                             → ESCALATE, action the call that failed (if any): the
                                                  back office refused, so a human has to take it from here
                                                  (SGD has no other escalation signal; this gives the
                                                  adapters one to learn)
  2. the turn made a `service_call`            → ACTION, action `Method(slot=value, ...)`
  3. REQUEST, CONFIRM or OFFER_INTENT           → ASK (the agent needs information or a yes/no)
  4. anything else (OFFER, INFORM, INFORM_COUNT, NOTIFY_SUCCESS, REQ_MORE, GOODBYE) → RESOLVE
"""

from __future__ import annotations

from clonedesk.core.domain.action_calls import format_action_call
from clonedesk.core.domain.payloads import WrongShape, require
from clonedesk.v1 import common_pb2

ASK_ACTS = {"REQUEST", "CONFIRM", "OFFER_INTENT"}


def format_call(service_call: dict) -> str:
    parameters = service_call.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise WrongShape("service_call.parameters must be an object")
    return format_action_call(str(require(service_call, "method")), parameters)


def decide(frames: list) -> tuple[int, str]:
    """(decision, action) of one SYSTEM turn from its frames."""
    acts = set()
    call = ""
    for frame in frames or ():
        if frame.get("service_call") and not call:
            call = format_call(frame["service_call"])
        acts.update(action.get("act") for action in frame.get("actions") or ())
    if "NOTIFY_FAILURE" in acts:
        return common_pb2.ESCALATE, call
    if call:
        return common_pb2.ACTION, call
    if acts & ASK_ACTS:
        return common_pb2.ASK, ""
    return common_pb2.RESOLVE, ""


def recorded_calls(dialogue: dict) -> list[dict]:
    """Every service call of an SGD dialogue, in order, with the results it got back."""
    calls = []
    for index, turn in enumerate(dialogue.get("turns") or ()):
        for frame in turn.get("frames") or ():
            call = frame.get("service_call")
            if call:
                calls.append({"action": str(call.get("method", "")),
                              "parameters": {str(k): str(v) for k, v in (call.get("parameters") or {}).items()},
                              "results": list(frame.get("service_results") or []), "turn": index})
    return calls
