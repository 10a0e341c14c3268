"""The demo's HTTP clients against a real server that is restarting: the finance client waits out the
API's 503s (it reads Retry-After), the helpdesk's webhook sender retries what got no 2xx and remembers
what was acknowledged."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from clonedesk.demo.adapters.analytics import AnalyticsClient
from clonedesk.demo.adapters.helpdesk import DemoStepFailed, WebhookSender
from clonedesk.demo.domain.zendesk_events import Webhook
from tests.metering.helpers import ApiServer

pytestmark = pytest.mark.integration


def restarting_app(unavailable: int) -> tuple[FastAPI, list[str]]:
    """Answers 503 with Retry-After to the first `unavailable` requests, then 200."""
    app, seen = FastAPI(), []

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def anything(path: str):
        seen.append(path)
        if len(seen) <= unavailable:
            return JSONResponse({"detail": "metering is not running yet"}, status_code=503,
                                headers={"Retry-After": "1"})
        return JSONResponse({"resolutions": {"confirmed": 1}})

    return app, seen


def test_the_finance_client_waits_out_a_restarting_api():
    app, seen = restarting_app(unavailable=2)
    with ApiServer(app) as server:
        async def read():
            async with httpx.AsyncClient() as client:
                return await AnalyticsClient(client, server.url, "key").invoice("acme", "2026-12")

        assert asyncio.run(read()) == {"resolutions": {"confirmed": 1}}
    assert len(seen) == 3


def test_the_finance_client_gives_up_with_a_clear_error():
    app, seen = restarting_app(unavailable=100)
    with ApiServer(app) as server:
        async def read():
            async with httpx.AsyncClient() as client:
                await AnalyticsClient(client, server.url, "key")._get("/v1/tenants/acme/invoice", {},
                                                                      unavailable_for_s=1.5)

        with pytest.raises(DemoStepFailed, match="HTTP 503"):
            asyncio.run(read())
    assert 2 <= len(seen) <= 4


def test_the_webhook_sender_retries_and_records_what_was_acknowledged():
    app, seen = restarting_app(unavailable=2)
    with ApiServer(app) as server:
        async def send():
            async with httpx.AsyncClient() as client:
                sender = WebhookSender(client, server.url)
                await sender.send("acme", "secret", Webhook({"type": "zen:event-type:ticket.comment_added"}, "ev-1"))
                await sender.send("acme", "secret", Webhook({"type": "zen:event-type:ticket.comment_added"}, "ev-2"))
                return sender

        sender = asyncio.run(send())
    assert sender.acknowledged == ["ev-1", "ev-2"] and sender.sent == 2
    assert len(seen) == 4
