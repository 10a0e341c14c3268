"""The analytics API as a tenant's finance team would read it: invoice and usage over HTTP, with a key."""

from __future__ import annotations

import asyncio

import httpx

from clonedesk.demo.adapters.helpdesk import DemoStepFailed


class AnalyticsClient:
    def __init__(self, client: httpx.AsyncClient, api_url: str, api_key: str):
        self.client = client
        self.url = api_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"}

    async def _get(self, path: str, params: dict, unavailable_for_s: float = 90.0) -> dict:
        """GET, waiting out a 503 (metering restarting) or no answer (the API restarting) for a while, as
        a client reads `Retry-After`."""
        deadline = asyncio.get_running_loop().time() + unavailable_for_s
        while True:
            try:
                response = await self.client.get(f"{self.url}{path}", params=params, headers=self.headers,
                                                 timeout=30.0)
            except httpx.TransportError as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise DemoStepFailed(f"analytics API {path}: no answer ({type(exc).__name__})"
                                         " (see logs/api.log)") from None
                await asyncio.sleep(1.0)
                continue
            if response.status_code != 503 or asyncio.get_running_loop().time() > deadline:
                break
            retry_after = response.headers.get("retry-after", "")
            await asyncio.sleep(min(float(retry_after) if retry_after.isdigit() else 1.0, 5.0))
        if response.status_code != 200:
            raise DemoStepFailed(f"analytics API {path}: HTTP {response.status_code}: {response.text[:200]}"
                                 " (see logs/api.log, logs/metering.log)")
        return response.json()

    async def invoice(self, tenant_id: str, month: str) -> dict:
        return await self._get(f"/v1/tenants/{tenant_id}/invoice", {"month": month})

    async def usage(self, tenant_id: str, start: str, end: str) -> dict:
        return await self._get(f"/v1/tenants/{tenant_id}/usage",
                               {"from": start, "to": end, "granularity": "day"})

    async def wait_for_resolutions(self, tenant_id: str, months: list[str], expected: int,
                                   timeout: float) -> dict[str, dict]:
        """Each month's invoice once metering holds all `expected` resolutions of the tenant and their
        states stopped changing between two reads (the sink settles outcomes in batches)."""
        deadline = asyncio.get_running_loop().time() + timeout
        previous = None
        while True:
            invoices = {month: await self.invoice(tenant_id, month) for month in months}
            counted = sum(sum(i["resolutions"].values()) for i in invoices.values())
            snapshot = [i["resolutions"] for i in invoices.values()]
            if counted >= expected and snapshot == previous:
                return invoices
            previous = snapshot if counted >= expected else None
            if asyncio.get_running_loop().time() > deadline:
                raise DemoStepFailed(f"metering holds {counted} of {tenant_id}'s {expected} resolutions after"
                                     f" {timeout:.0f}s (see logs/metering.log)")
            await asyncio.sleep(2.0)
