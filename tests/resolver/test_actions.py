"""Carrying out ACTION answers: the rules (pure) and the signed HTTP call to a real back office."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from clonedesk.core.domain.action_calls import ActionCall
from clonedesk.core.tenants import Tenant
from clonedesk.resolver.adapters.back_office import BackOffice
from clonedesk.resolver.domain.actions import (Refusal, Status, allowed_names, idempotency_key, plan_call,
                                               request_body, signature)
from clonedesk.core.domain.conversation_format import reply_after_action
from clonedesk.resolver.domain.decisions import decide, escalate
from clonedesk.v1 import common_pb2

URL, SECRET = "http://back-office.example/actions", "s3cret"


def test_without_an_actions_url_nothing_is_called():
    refusal = plan_call("Book(day=Friday)", actions_url="", actions_secret=SECRET, allowed=frozenset({"Book"}))
    assert isinstance(refusal, Refusal) and refusal.status == Status.NOT_CONFIGURED


def test_a_malformed_call_is_refused_with_its_reason():
    refusal = plan_call("Book(day=Friday", actions_url=URL, actions_secret=SECRET, allowed=frozenset({"Book"}))
    assert refusal.status == Status.MALFORMED and "closing parenthesis" in refusal.reason


def test_only_allowed_names_are_called():
    refusal = plan_call("Refund(amount=100)", actions_url=URL, actions_secret=SECRET, allowed=frozenset({"Book"}))
    assert refusal.status == Status.NOT_ALLOWED and "Refund" in refusal.reason
    call = plan_call("Book(day=Friday, room=\"a, b\")", actions_url=URL, actions_secret=SECRET,
                     allowed=frozenset({"Book"}))
    assert call == ActionCall("Book", {"day": "Friday", "room": "a, b"})


def test_the_allowed_calls_are_the_tenants_list_else_its_history():
    assert allowed_names([], ("Book", "Find")) == {"Book", "Find"}
    assert allowed_names(["Find", " "], ("Book", "Find")) == {"Find"}
    assert allowed_names([], None) == frozenset()


def test_the_idempotency_key_depends_on_the_resolution_and_the_call_only():
    book = ActionCall("Book", {"day": "Friday"})
    assert idempotency_key("r1", book) == idempotency_key("r1", ActionCall("Book", {"day": "Friday"}))
    assert idempotency_key("r1", book) != idempotency_key("r2", book)
    assert idempotency_key("r1", book) != idempotency_key("r1", ActionCall("Book", {"day": "Monday"}))


def test_the_signature_is_the_hmac_of_the_raw_body():
    body = request_body("acme", "t-1", "r1", ActionCall("Book", {"day": "Friday"}), 1700000000)
    assert json.loads(body) == {"tenant_id": "acme", "ticket_id": "t-1", "resolution_id": "r1", "action": "Book",
                                "parameters": {"day": "Friday"}, "timestamp": 1700000000}
    assert signature(SECRET, body) == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()


def test_an_action_needs_no_reply_before_its_result_only_when_one_follows():
    header_only = "[decision=ACTION action=Book(day=Friday)]"
    assert decide(header_only, 0.9, 0.5).reason == "empty reply"
    waiting = decide(header_only, 0.9, 0.5, reply_follows_action=True)
    assert (waiting.decision, waiting.escalated, waiting.action) == (common_pb2.ACTION, False, "Book(day=Friday)")
    handed = escalate(waiting, "action Book timed out")
    assert (handed.decision, handed.reply, handed.escalated, handed.reason) == (
        common_pb2.ESCALATE, "", True, "action Book timed out")
    assert reply_after_action(" The Savoy is booked. ") == "The Savoy is booked."
    assert reply_after_action("[decision=RESOLVE]\nThe Savoy is booked.") == "The Savoy is booked."


class BackOfficeServer:
    """A real HTTP back office on a loopback port. It checks each request's signature itself (hmac, not
    the code under test) and answers from `script`: one (status, body, delay_s) per request, the last
    repeated."""

    def __init__(self, secret: str, script):
        self.secret = secret
        self.script = list(script)
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(outer.secret.encode(), raw, hashlib.sha256).hexdigest()
                signed = hmac.compare_digest(expected, self.headers.get("X-CloneDesk-Signature", ""))
                outer.requests.append({"body": json.loads(raw), "signed": signed,
                                       "key": self.headers.get("Idempotency-Key"),
                                       "timestamp": self.headers.get("X-CloneDesk-Timestamp")})
                status, body, delay = outer.script[min(len(outer.requests), len(outer.script)) - 1]
                if not signed:
                    status, body, delay = 401, {"ok": False, "error": "bad signature"}, 0
                time.sleep(delay)
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout): nothing to answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/actions"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _tenant(url: str, timeout_s: float = 2.0) -> Tenant:
    tenant = Tenant.new("acme")
    tenant.actions_url, tenant.actions_secret, tenant.actions_timeout_s = url, SECRET, timeout_s
    return tenant


BOOK = ActionCall("Book", {"day": "Friday", "where": "Sydney, Australia"})
OK = (200, {"ok": True, "results": [{"hotel": "Savoy"}]}, 0)


async def _call(server, **tenant_options):
    office = BackOffice(retry_pause_s=0.01)
    try:
        return await office.call(_tenant(server.url, **tenant_options), "t-1", "r-1", BOOK)
    finally:
        await office.close()


async def test_an_ok_answer_brings_its_results():
    with BackOfficeServer(SECRET, [OK]) as server:
        outcome = await _call(server)
    assert outcome.status == Status.OK and outcome.answer.results == ({"hotel": "Savoy"},)
    (seen,) = server.requests
    assert seen["signed"] and seen["key"] == idempotency_key("r-1", BOOK) == outcome.idempotency_key
    assert seen["body"]["parameters"] == {"day": "Friday", "where": "Sydney, Australia"}
    assert seen["body"]["timestamp"] == int(seen["timestamp"]) and abs(int(seen["timestamp"]) - time.time()) < 60


async def test_a_5xx_is_retried_under_the_same_key_and_then_succeeds():
    with BackOfficeServer(SECRET, [(503, {"ok": False, "error": "busy"}, 0), OK]) as server:
        outcome = await _call(server)
    assert (outcome.status, outcome.attempts) == (Status.OK, 2)
    assert len({r["key"] for r in server.requests}) == 1 and all(r["signed"] for r in server.requests)


async def test_retries_are_bounded_and_a_lasting_5xx_fails():
    with BackOfficeServer(SECRET, [(500, b"oops", 0)]) as server:
        outcome = await _call(server)
    assert (outcome.status, outcome.attempts, len(server.requests)) == (Status.FAILED, 3, 3)
    assert "HTTP 500" in outcome.reason and outcome.answer is None


async def test_a_slow_back_office_times_out():
    with BackOfficeServer(SECRET, [(200, {"ok": True, "results": []}, 1.0)]) as server:
        outcome = await _call(server, timeout_s=0.2)
    assert outcome.status == Status.TIMED_OUT and "timed out after 0.2s" in outcome.reason


@pytest.mark.parametrize("script, reason", [
    ([(200, {"ok": False, "error": "no rooms left"}, 0)], "failed: no rooms left"),
    ([(404, {"detail": "no such call"}, 0)], "HTTP 404"),
    ([(200, b"<html>", 0)], "not of the contract's shape"),
])
async def test_a_refusal_or_a_bad_answer_fails_without_a_retry(script, reason):
    with BackOfficeServer(SECRET, script) as server:
        outcome = await _call(server)
    assert outcome.status == Status.FAILED and reason in outcome.reason and len(server.requests) == 1


async def test_an_unreachable_back_office_fails():
    with BackOfficeServer(SECRET, [OK]) as server:
        url = server.url
    outcome = await _call(type("Gone", (), {"url": url})())
    assert outcome.status == Status.FAILED and "unreachable" in outcome.reason and outcome.attempts == 3
