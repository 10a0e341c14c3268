"""The demo's side of the helpdesk: it sends signed Zendesk webhooks to the gateway (as Zendesk does) and
reads the replies CloneDesk posted to the helpdesk simulator."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import httpx

from clonedesk.demo.domain.zendesk_events import Webhook
from clonedesk.core.signatures import zendesk_signature


class DemoStepFailed(RuntimeError):
    """A step of the demo could not complete; the message says which and where to look."""


class WebhookSender:
    """POSTs webhooks to `/webhooks/zendesk/{tenant}`, signed with the tenant's secret the way Zendesk signs
    (HMAC-SHA256 over timestamp + body). A 503 (broker busy) or no answer (a gateway restarting) is retried
    with backoff, as Zendesk retries a failed delivery."""

    def __init__(self, client: httpx.AsyncClient, gateway_url: str, attempts: int = 8):
        self.client = client
        self.gateway_url = gateway_url.rstrip("/")
        self.attempts = attempts
        self.sent = 0
        self.acknowledged: list[str] = []  # the event id of every webhook the gateway answered 2xx

    async def send(self, tenant_id: str, secret: str, webhook: Webhook) -> None:
        body = json.dumps(webhook.payload).encode()
        for attempt in range(1, self.attempts + 1):
            timestamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            headers = {"Content-Type": "application/json",
                       "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
                       "X-Zendesk-Webhook-Signature": zendesk_signature(secret, timestamp, body)}
            try:
                response = await self.client.post(f"{self.gateway_url}/webhooks/zendesk/{tenant_id}",
                                                  content=body, headers=headers, timeout=15.0)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}"
            else:
                if response.status_code in (200, 202):
                    self.sent += 1
                    self.acknowledged.append(webhook.event_id)
                    return
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code != 503:
                    break
            await asyncio.sleep(min(5.0, 0.5 * 2 ** (attempt - 1)))
        raise DemoStepFailed(f"the gateway refused a webhook for {tenant_id} ({webhook.payload['type']}):"
                             f" {problem} (see logs/gateway.log)")

    async def send_all(self, tenant_id: str, secret: str, webhooks: list[Webhook]) -> None:
        for webhook in webhooks:
            await self.send(tenant_id, secret, webhook)


class SimulatorReplies:
    """The helpdesk simulator's record of replies CloneDesk posted (`GET /replies`)."""

    def __init__(self, client: httpx.AsyncClient, simulator_url: str):
        self.client = client
        self.url = simulator_url.rstrip("/")

    async def of(self, tenant_id: str, ticket_id: str | None = None) -> list[dict]:
        params = {"tenant_id": tenant_id, **({"ticket_id": ticket_id} if ticket_id else {})}
        response = await self.client.get(f"{self.url}/replies", params=params, timeout=10.0)
        response.raise_for_status()
        return response.json()["replies"]

    async def wait_for(self, tenant_id: str, ticket_id: str, idempotency_key: str, timeout: float) -> dict:
        """The reply posted under `idempotency_key` (one per resolution), once the outbound poster
        delivered it."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for reply in await self.of(tenant_id, ticket_id):
                if reply.get("idempotency_key") == idempotency_key:
                    return reply
            if asyncio.get_running_loop().time() > deadline:
                raise DemoStepFailed(f"the reply to ticket {tenant_id}/{ticket_id} did not reach the helpdesk"
                                     f" simulator within {timeout:.0f}s (see logs/outbound.log)")
            await asyncio.sleep(0.5)


class SimulatorBackOffice:
    """The simulator's back office (stack/back_office_sim.py): the demo tells it each
    tenant's actions secret and each live ticket's recorded calls; the resolver then calls it."""

    def __init__(self, client: httpx.AsyncClient, simulator_url: str):
        self.client = client
        self.url = simulator_url.rstrip("/")

    def actions_url(self, tenant_id: str) -> str:
        return f"{self.url}/back-office/{tenant_id}/actions"

    async def open_for(self, tenant_id: str, secret: str) -> None:
        response = await self.client.put(f"{self.url}/_sim/back-office/{tenant_id}", json={"secret": secret},
                                         timeout=10.0)
        response.raise_for_status()

    async def expect_ticket(self, tenant_id: str, ticket_id: str, dialogue_id: str, calls: list[dict]) -> None:
        response = await self.client.put(f"{self.url}/_sim/back-office/{tenant_id}/tickets/{ticket_id}",
                                         json={"dialogue_id": dialogue_id, "calls": calls}, timeout=10.0)
        response.raise_for_status()

    async def calls(self, tenant_id: str | None = None) -> list[dict]:
        params = {"tenant_id": tenant_id} if tenant_id else {}
        response = await self.client.get(f"{self.url}/_sim/back-office/calls", params=params, timeout=10.0)
        response.raise_for_status()
        return response.json()["calls"]
