"""Reads the Schema-Guided Dialogue files (one business per file) as conversation text and as
TrainingSample records.

The product gets its samples from the ingest service over `training.samples`; this reader exists for
the base-model builder's pre-training text and for tests and benchmarks that need a tenant's history
without running ingest. An SGD SYSTEM turn is the agent's: its decision follows from the annotated acts
(NOTIFY_FAILURE: ESCALATE, a service call: ACTION, REQUEST/CONFIRM: ASK, else RESOLVE).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from clonedesk.v1 import common_pb2, training_pb2

_REPO = Path(__file__).resolve().parents[3]


def find_sgd_dir() -> Path | None:
    """The SGD folder: the shared datasets beside the project, else the subset the project carries."""
    for candidate in (_REPO.parent / "shared" / "datasets" / "sgd", _REPO / "data" / "sgd",
                      Path.cwd() / "data" / "sgd"):
        if candidate.is_dir() and any(candidate.glob("*.jsonl")):
            return candidate
    return None


def sgd_files(sgd_dir: Path) -> list[Path]:
    return sorted(Path(sgd_dir).glob("*.jsonl"))


def tenant_of(path: Path) -> str:
    """`train_Banks_1.jsonl` -> `banks-1` (a valid tenant id)."""
    name = path.stem.removeprefix("train_")
    return name.lower().replace("_", "-")


def read_dialogues(path: Path, limit: int | None = None) -> Iterator[dict]:
    with open(path, encoding="utf-8") as handle:
        for count, line in enumerate(handle):
            if limit is not None and count >= limit:
                return
            if line.strip():
                yield json.loads(line)


def dialogue_turns(dialogue: dict) -> list[tuple[int, str]]:
    """(Role, text) pairs: USER turns are the customer's, SYSTEM turns the agent's."""
    return [(common_pb2.CUSTOMER if turn["speaker"] == "USER" else common_pb2.AGENT, turn["utterance"])
            for turn in dialogue["turns"]]


def _agent_decision(turn: dict) -> tuple[int, str]:
    acts = {action["act"] for frame in turn.get("frames", []) for action in frame.get("actions", [])}
    calls = [frame["service_call"] for frame in turn.get("frames", []) if frame.get("service_call")]
    if "NOTIFY_FAILURE" in acts:
        return common_pb2.ESCALATE, ""
    if calls:
        call = calls[0]
        params = ", ".join(f"{k}={v}" for k, v in sorted(call.get("parameters", {}).items()))
        return common_pb2.ACTION, f"{call['method']}({params})"
    if acts & {"REQUEST", "CONFIRM"}:
        return common_pb2.ASK, ""
    return common_pb2.RESOLVE, ""


def _intent(turn: dict) -> str:
    for frame in turn.get("frames", []):
        intent = frame.get("state", {}).get("active_intent")
        if intent and intent != "NONE":
            return intent
    return ""


def dialogue_samples(tenant_id: str, dialogue: dict) -> list[training_pb2.TrainingSample]:
    """One TrainingSample per agent turn, with the conversation before it as context."""
    turns = dialogue["turns"]
    pairs = dialogue_turns(dialogue)
    ticket_id = dialogue["dialogue_id"]
    category = ""
    samples = []
    for index, turn in enumerate(turns):
        if turn["speaker"] == "USER":
            category = category or _intent(turn)
            continue
        decision, action = _agent_decision(turn)
        sample = training_pb2.TrainingSample(
            sample_id=f"{tenant_id}:{ticket_id}:{index}", tenant_id=tenant_id, ticket_id=ticket_id,
            reply=turn["utterance"], decision=decision, action=action, category=category, turn_index=index)
        for role, text in pairs[:index]:
            sample.context.add(role=role, text=text)
        samples.append(sample)
    return samples


def tenant_samples(path: Path, tenant_id: str | None = None,
                   limit: int | None = None) -> list[training_pb2.TrainingSample]:
    """Every agent-turn sample of the first `limit` dialogues of one SGD file."""
    tenant_id = tenant_id or tenant_of(path)
    return [s for d in read_dialogues(path, limit) for s in dialogue_samples(tenant_id, d)]
