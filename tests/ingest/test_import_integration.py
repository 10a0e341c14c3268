"""`clonedesk import zendesk|intercom|sgd` as the operator runs it, into the real broker and worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from clonedesk.core.domain import topics
from clonedesk.ingest.domain.pii import scrub
from clonedesk.core.domain.sgd import decide
from clonedesk.v1 import events_pb2, training_pb2
from tests.ingest import payloads as p
from tests.ingest.harness import REPO

pytestmark = pytest.mark.integration


def run_import(stack, kind: str, path, tenant_id: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clonedesk", "import", kind, str(path), "--tenant", tenant_id],
                          cwd=REPO, env={**os.environ, **stack.settings.child_env()}, capture_output=True, text=True,
                          timeout=120)


def decoded(records, message_type):
    messages = []
    for record in records:
        message = message_type()
        message.ParseFromString(record.value)
        messages.append(message)
    return messages


def of_tickets(tenant_id: str, tickets):
    keys = {f"{tenant_id}:{t}".encode() for t in tickets}
    return lambda record: record.key in keys


def test_sgd_import_reports_bad_lines_and_reimport_writes_the_same_ids(stack, sgd_dir, tmp_path):
    lines = (sgd_dir / "train_Hotels_1.jsonl").read_text().splitlines()[:2]
    dialogues = [json.loads(line) for line in lines]
    path = tmp_path / "restaurants.jsonl"
    path.write_text("\n".join([lines[0], '{"dialogue_id": "broken', lines[1], '{"dialogue_id": "x", "turns": 3}']) + "\n")
    tenant = stack.quiet.id
    tickets = [d["dialogue_id"] for d in dialogues]

    first = run_import(stack, "sgd", path, tenant)
    assert first.returncode == 0, first.stderr
    expected_events = sum(len(d["turns"]) + 2 for d in dialogues)
    assert f"4 records, {expected_events} events written, 2 records rejected" in first.stdout
    assert f"{path}:2: invalid JSON" in first.stderr and f"{path}:4: " in first.stderr

    system_turns = [t for d in dialogues for t in d["turns"] if t["speaker"] == "SYSTEM"]
    samples = decoded(stack.recorder.wait_for(topics.TRAINING_SAMPLES, of_tickets(tenant, tickets),
                                              len(system_turns), timeout=90), training_pb2.TrainingSample)
    assert sorted(s.reply for s in samples) == sorted(scrub(t["utterance"]) for t in system_turns)
    by_reply = {scrub(t["utterance"]): decide(t["frames"]) for t in system_turns}
    assert all((s.decision, s.action) == by_reply[s.reply] for s in samples)
    assert all(s.context and s.context[0].text == d["turns"][0]["utterance"]
               for s in samples for d in dialogues if d["dialogue_id"] == s.ticket_id)

    again = run_import(stack, "sgd", path, tenant)
    assert again.returncode == 0, again.stderr
    events = decoded(stack.recorder.wait_for(topics.HELPDESK_EVENTS, of_tickets(tenant, tickets),
                                             2 * expected_events, settle=3), events_pb2.HelpdeskEvent)
    ids = [e.event_id for e in events]
    assert len(ids) == 2 * expected_events and all(ids.count(i) == 2 for i in ids)
    assert len(stack.recorder.matching(topics.TRAINING_SAMPLES, of_tickets(tenant, tickets))) == len(system_turns)


def test_zendesk_and_intercom_exports(stack, tmp_path):
    tenant = stack.quiet.id
    zendesk_ticket, conversation_id = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    export = {"tickets": [
        {"id": zendesk_ticket, "requester_id": 1, "subject": "Refund", "description": "Please refund order 7",
         "created_at": "2026-01-02T10:00:00Z", "updated_at": "2026-01-02T11:00:00Z", "status": "closed",
         "comments": [{"id": 11, "author_id": 1, "body": "Please refund order 7", "public": True,
                       "created_at": "2026-01-02T10:00:00Z"},
                      {"id": 12, "author_id": 2, "body": "Refunded order 7.", "public": True,
                       "created_at": "2026-01-02T10:30:00Z"}]},
        {"requester_id": 1, "subject": "no id"},
    ], "users": [{"id": 1, "role": "end-user"}, {"id": 2, "role": "agent"}]}
    zendesk_file = tmp_path / "zendesk.json"
    zendesk_file.write_text(json.dumps(export, indent=2))
    result = run_import(stack, "zendesk", zendesk_file, tenant)
    assert result.returncode == 0, result.stderr
    assert "2 records, 4 events written, 1 records rejected" in result.stdout
    assert f"{zendesk_file}:" in result.stderr and "missing field id" in result.stderr

    conversation = p.intercom_conversation(conversation_id, [
        p.intercom_part(f"{conversation_id}-1", "comment", "<p>We resent the parcel.</p>", created_at=1763719300),
        p.intercom_part(f"{conversation_id}-2", "close", created_at=1763719400)])
    conversation["state"] = "closed"
    intercom_file = tmp_path / "intercom.jsonl"
    intercom_file.write_text(json.dumps(conversation) + "\n")
    assert run_import(stack, "intercom", intercom_file, tenant).returncode == 0

    zendesk_sample, intercom_sample = [
        decoded(stack.recorder.wait_for(topics.TRAINING_SAMPLES, of_tickets(tenant, [t]), 1, timeout=60),
                training_pb2.TrainingSample)[0] for t in (zendesk_ticket, conversation_id)]
    assert zendesk_sample.reply == "Refunded order 7." and zendesk_sample.context[0].text == "Please refund order 7"
    assert intercom_sample.reply == "We resent the parcel."
    assert intercom_sample.context[0].text == "Hi, my parcel never arrived."


def test_import_for_an_unknown_tenant_is_one_clear_line(stack, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    result = run_import(stack, "sgd", path, "nobody-here")
    assert result.returncode == 1 and "unknown tenant 'nobody-here'" in result.stderr
    assert "Traceback" not in result.stderr
