"""The helpdesk simulator's back office: a tenant's actions URL for the demo and the tests, answering
each live ticket's calls from what the ticket's recorded dialogue got back (SGD `service_results`), and
saying so in a `source` field beside the contract's `ok` / `results`.

It checks every request the way a tenant's back office would, with its own HMAC code: a bad or missing
signature is 401, a body that is not the contract's 422. A call the ticket's dialogue never made is
`ok: false` (the resolver escalates). The same `Idempotency-Key` gets the same answer and uses up no
other recorded call.

    PUT  /_sim/back-office/{tenant}                    {"secret": …}: the tenant's actions_secret
    PUT  /_sim/back-office/{tenant}/tickets/{ticket}   {"dialogue_id": …, "calls": [{"action", "parameters", "results"}]}
    POST /back-office/{tenant}/actions                 the actions URL
    GET  /_sim/back-office/calls                       every call received, with the answer given
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, Field


class TenantSecret(BaseModel):
    secret: str = Field(min_length=8, max_length=200)


class RecordedCall(BaseModel):
    action: str = Field(min_length=1, max_length=200)
    parameters: dict[str, str] = Field(default_factory=dict)
    results: list[dict] = Field(default_factory=list)
    turn: int = 0


class TicketCalls(BaseModel):
    dialogue_id: str = ""
    calls: list[RecordedCall] = Field(default_factory=list, max_length=200)


class RecordedBackOffice:
    def __init__(self):
        self._lock = threading.Lock()
        self.secrets: dict[str, str] = {}
        self.tickets: dict[tuple[str, str], TicketCalls] = {}
        self.used: dict[tuple[str, str], set[int]] = {}
        self.answers: dict[tuple[str, str], dict] = {}  # (tenant, idempotency key) -> answer
        self.calls: list[dict] = []

    def answer(self, tenant_id: str, body: dict, key: str) -> dict:
        with self._lock:
            if key and (tenant_id, key) in self.answers:
                return self.answers[(tenant_id, key)]
            ticket = self.tickets.get((tenant_id, str(body["ticket_id"])))
            answer = self._choose(tenant_id, ticket, body)
            if key:
                self.answers[(tenant_id, key)] = answer
            self.calls.append({"tenant_id": tenant_id, "ticket_id": body["ticket_id"], "action": body["action"],
                               "parameters": body["parameters"], "idempotency_key": key, "answer": answer})
            return answer

    def _choose(self, tenant_id: str, ticket: TicketCalls | None, body: dict) -> dict:
        if ticket is None:
            return {"ok": False, "error": f"no recorded dialogue for ticket {body['ticket_id']}"}
        used = self.used.setdefault((tenant_id, str(body["ticket_id"])), set())
        same_name = [i for i, call in enumerate(ticket.calls) if call.action == body["action"]]
        # the first unused call of that name, else the last one (a repeated question gets the same answer)
        fresh = [i for i in same_name if i not in used]
        if not same_name:
            return {"ok": False, "error": f"the recorded dialogue never called {body['action']}"}
        index = fresh[0] if fresh else same_name[-1]
        used.add(index)
        call = ticket.calls[index]
        return {"ok": True, "results": call.results,
                "source": f"recorded service_results of dialogue {ticket.dialogue_id}, turn {call.turn}"
                          f" ({call.action} with {json.dumps(call.parameters, sort_keys=True)})"}


def add_back_office_routes(app: FastAPI) -> RecordedBackOffice:
    office = RecordedBackOffice()

    @app.put("/_sim/back-office/{tenant_id}")
    async def set_secret(tenant_id: str, body: TenantSecret):
        office.secrets[tenant_id] = body.secret
        return {"tenant_id": tenant_id}

    @app.put("/_sim/back-office/{tenant_id}/tickets/{ticket_id}")
    async def set_ticket(tenant_id: str, ticket_id: str, body: TicketCalls):
        with office._lock:
            office.tickets[(tenant_id, ticket_id)] = body
            office.used.pop((tenant_id, ticket_id), None)
        return {"tenant_id": tenant_id, "ticket_id": ticket_id, "calls": len(body.calls)}

    @app.post("/back-office/{tenant_id}/actions")
    async def carry_out(tenant_id: str, request: Request):
        raw = await request.body()
        secret = office.secrets.get(tenant_id)
        if secret is None:
            raise HTTPException(404, f"no back office for tenant {tenant_id}")
        expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-CloneDesk-Signature", "")):
            raise HTTPException(401, "bad signature")
        try:
            body = json.loads(raw)
        except ValueError:
            raise HTTPException(422, "the body is not JSON") from None
        if (not isinstance(body, dict) or body.get("tenant_id") != tenant_id or not body.get("ticket_id")
                or not isinstance(body.get("action"), str) or not isinstance(body.get("parameters"), dict)):
            raise HTTPException(422, "expected {tenant_id, ticket_id, resolution_id, action, parameters}")
        return office.answer(tenant_id, body, request.headers.get("Idempotency-Key", ""))

    @app.get("/_sim/back-office/calls")
    async def list_calls(tenant_id: str | None = None):
        return {"calls": [c for c in office.calls if tenant_id is None or c["tenant_id"] == tenant_id]}

    return office
