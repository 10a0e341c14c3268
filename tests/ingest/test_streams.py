"""The faust worker's per-record step with a fake table and a fake broker: outputs are acknowledged
before the table keeps the new state, so a crash in between repeats outputs instead of losing them."""

from __future__ import annotations

import asyncio

import pytest

from clonedesk.core.domain import topics
from clonedesk.core.settings import Settings
from clonedesk.ingest.domain.events import Kind, new_event
from clonedesk.ingest.entrypoints.streams import ConversationUpdater, create_app
from clonedesk.v1 import common_pb2


def opening(event_id: str = "e1"):
    return new_event(event_id=event_id, tenant_id="acme", ticket_id="t1", source=common_pb2.ZENDESK,
                     kind=Kind.MESSAGE, author_role=common_pb2.CUSTOMER, body="Where is my parcel?",
                     occurred_at=1_763_700_000)


class RecordingTable(dict):
    def __init__(self, log: list):
        super().__init__()
        self.log = log

    def __setitem__(self, key, value):
        self.log.append(("table", key))
        super().__setitem__(key, value)


class FakeBroker:
    """Sends return a delivery the broker acknowledges a moment later (or refuses, when told to)."""

    def __init__(self, log: list, refuse: bool = False):
        self.log, self.refuse = log, refuse

    async def send(self, topic: str, key: bytes, value: bytes):
        self.log.append(("send", topic))
        delivery = asyncio.get_running_loop().create_future()

        def acknowledge():
            if self.refuse:
                delivery.set_exception(ConnectionError("broker went away"))
            else:
                self.log.append(("ack", topic))
                delivery.set_result(None)
        asyncio.get_running_loop().call_later(0.01, acknowledge)
        return delivery


def test_outputs_are_acknowledged_before_the_table_keeps_the_state():
    log: list = []
    table = RecordingTable(log)
    updater = ConversationUpdater(table, FakeBroker(log).send, is_live=lambda tenant: True)
    emits = asyncio.run(updater.update(opening()))
    assert [e.topic for e in emits] == [topics.TICKETS_TO_RESOLVE]
    assert log == [("send", topics.TICKETS_TO_RESOLVE), ("ack", topics.TICKETS_TO_RESOLVE),
                   ("table", "acme:t1")]
    assert asyncio.run(updater.update(opening())) is None  # a redelivery after that: nothing again


def test_an_unacknowledged_output_leaves_the_table_so_the_redelivery_sends_it_again():
    log: list = []
    table = RecordingTable(log)
    with pytest.raises(ConnectionError):
        asyncio.run(ConversationUpdater(table, FakeBroker(log, refuse=True).send, lambda tenant: True)
                    .update(opening()))
    assert "acme:t1" not in table and ("table", "acme:t1") not in log
    # The worker restarts and the input is redelivered: it is news again, and its output goes out.
    updater = ConversationUpdater(table, FakeBroker(log).send, lambda tenant: True)
    emits = asyncio.run(updater.update(opening()))
    assert [e.topic for e in emits] == [topics.TICKETS_TO_RESOLVE] and "acme:t1" in table


def test_the_worker_keeps_its_data_under_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=tmp_path / "data", kafka_bootstrap="127.0.0.1:1")
    app = create_app(settings, app_id="datadir-check")
    assert app.conf.appdir.is_relative_to(settings.resolved_data_dir / "streams")
    assert app.conf.datadir.is_dir()  # faust itself creates only its last level when the worker starts
