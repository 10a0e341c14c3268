"""The faust worker restarted: its table comes back from the changelog, so a webhook redelivered after
the restart is still recognised, and the conversation goes on where it was."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from clonedesk.core.domain import topics
from clonedesk.v1 import training_pb2
from tests.ingest import payloads as p
from tests.ingest.harness import keyed

pytestmark = pytest.mark.integration


def test_state_survives_a_worker_restart(stack):
    tid = uuid.uuid4().hex[:10]
    tenant = stack.live
    opening = p.zendesk_created(tid)
    assert stack.zendesk(tenant, opening).status_code == 200
    stack.wait_for(topics.TICKETS_TO_RESOLVE, keyed(tenant.id, tid), 1, timeout=150)

    stack.restart_streams()

    for payload in [opening,  # redelivered after the restart: must change nothing
                    p.zendesk_comment(tid, f"{tid}-1", "Which order was it?", staff=True, time="2026-11-21T10:01:00Z"),
                    p.zendesk_status(tid, f"{tid}-s", "OPEN", "SOLVED", time="2026-11-21T10:02:00Z")]:
        assert stack.zendesk(tenant, payload).status_code == 200
    records = stack.wait_for(topics.TRAINING_SAMPLES, keyed(tenant.id, tid), 1, timeout=180, settle=2)
    sample = training_pb2.TrainingSample()
    sample.ParseFromString(records[0].value)
    # The customer's opening message was only in the table before the restart.
    assert [t.text for t in sample.context] == [p.zendesk_detail(tid)["description"]]
    assert len(records) == 1
    assert len(stack.recorder.matching(topics.TICKETS_TO_RESOLVE, keyed(tenant.id, tid))) == 1


@pytest.mark.slow
@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_the_worker_resumes_after_every_restart_in_a_row(stack, kill):
    """Once a restarted worker logged "Worker ready" and then processed nothing for 3 minutes: restart it
    again and again (a clean stop or a SIGKILL) and require each restart to pick up new work promptly."""
    tenant = stack.live
    waits, stalls = [], []
    exits_before = len(stack.unplanned_exits)
    for round_number in range(int(os.environ.get("CLONEDESK_TEST_RESTARTS", "4"))):
        # Every other round restarts with a webhook in flight (sent, maybe not processed yet).
        in_flight = uuid.uuid4().hex[:10] if round_number % 2 else None
        if in_flight:
            assert stack.zendesk(tenant, p.zendesk_created(in_flight)).status_code == 200
        stack.restart_streams(kill=kill)
        tid = uuid.uuid4().hex[:10]
        started = time.monotonic()
        assert stack.zendesk(tenant, p.zendesk_created(tid)).status_code == 200
        exits_then = len(stack.unplanned_exits)
        for ticket in filter(None, (in_flight, tid)):
            # A stall watch's exit is restarted by the fixture's supervisor, as `clonedesk up` does.
            try:
                stack.wait_for(topics.TICKETS_TO_RESOLVE, keyed(tenant.id, ticket), 1, timeout=150)
            except AssertionError as exc:
                sent = "just before the restart" if ticket == in_flight else "after the restart"
                raise AssertionError(f"round {round_number}, ticket {ticket} (sent {sent}): {exc}") from None
        if len(stack.unplanned_exits) > exits_then:
            stalls.append(round_number)
        waits.append(round(time.monotonic() - started, 1))
    log = (stack.root / "streams.log").read_text(errors="replace")
    seeks_back = log.count("records were fetched and never processed")
    print(f"seconds from restart to the new tickets processed: {waits}; stalls restarted in rounds {stalls} "
          f"(exit codes {stack.unplanned_exits[exits_before:]}); dropped fetches read again (whole package so "
          f"far): {seeks_back}")
    assert max(waits) < 90, waits  # a stall costs its watch's 30 s plus a restart
