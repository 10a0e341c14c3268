"""`clonedesk helpdesk-sim`: a small local helpdesk speaking the two APIs the outbound worker posts to —
Zendesk's ticket update with a comment, and Intercom's conversation reply — and recording every reply,
so the embedded stack and the tests go through the real HTTP path.

Like the real APIs it wants credentials (401 without) and well-formed bodies (422); unlike them it
honours `Idempotency-Key` (a redelivered reply is recorded once). A ticket's replies read back as each
API shows them (Zendesk's comment list, Intercom's conversation), which the outbound worker asks after a
cut-off attempt. It lists what it got (`GET /replies`, with
`posts`: every accepted post, duplicates included, as a helpdesk without idempotency would record them),
and can be told to fail the next N posts (`POST /_sim/faults`) to exercise retries. It also plays each
tenant's back office, answering calls from the recorded dialogues (back_office_sim.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from clonedesk.stack.back_office_sim import add_back_office_routes

MAX_BODY_CHARS = 65_536


class ZendeskComment(BaseModel):
    body: str = Field(min_length=1, max_length=MAX_BODY_CHARS)
    public: bool = True
    author_id: str | int | None = None


class ZendeskTicketUpdate(BaseModel):
    comment: ZendeskComment


class ZendeskUpdate(BaseModel):
    ticket: ZendeskTicketUpdate


class IntercomReply(BaseModel):
    message_type: str = Field(pattern="^(comment|note)$")
    type: str = Field(pattern="^(admin|user)$")
    body: str = Field(min_length=1, max_length=MAX_BODY_CHARS)
    admin_id: str | int | None = None


class Faults(BaseModel):
    fail_next: int = Field(ge=0)
    status: int = Field(default=503, ge=400, le=599)


class ReplyLog:
    """Replies received, deduplicated on idempotency key, kept in memory and (optionally) as JSON lines."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self._lock = threading.Lock()
        self.replies: list[dict] = []
        self._by_key: dict[str, dict] = {}
        self.fail_next = 0
        self.fail_status = 503
        self.rejected = 0
        # Accepted posts per (tenant, ticket), duplicates included: what a helpdesk without idempotency keeps.
        self.posts: Counter[tuple[str, str]] = Counter()
        if path and path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    self._remember(json.loads(line))

    def _remember(self, record: dict) -> None:
        self.replies.append(record)
        if record.get("idempotency_key"):
            self._by_key[record["idempotency_key"]] = record

    def record(self, record: dict) -> tuple[dict, bool]:
        with self._lock:
            self.posts[(record.get("tenant_id", ""), record.get("ticket_id", ""))] += 1
            key = record.get("idempotency_key")
            if key and key in self._by_key:
                return self._by_key[key], False
            record = {**record, "id": len(self.replies) + 1, "received_at": time.time()}
            self._remember(record)
            if self.path:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a") as handle:
                    handle.write(json.dumps(record) + "\n")
            return record, True

    def injected_failure(self) -> int | None:
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                self.rejected += 1
                return self.fail_status
            return None


def create_app(log_path: Path | None = None) -> FastAPI:
    app = FastAPI(title="CloneDesk helpdesk simulator")
    replies = ReplyLog(log_path)
    app.state.replies = replies
    app.state.back_office = add_back_office_routes(app)

    def check_faults() -> None:
        status = replies.injected_failure()
        if status is not None:
            raise HTTPException(status, "injected failure", headers={"Retry-After": "0"})

    def record(
        api: str, ticket: str, body: str, author: str, tenant: str | None, key: str | None, public: bool
    ) -> dict:
        entry, _ = replies.record(
            {
                "api": api,
                "ticket_id": ticket,
                "tenant_id": tenant or "",
                "body": body,
                "author_id": author,
                "public": public,
                "idempotency_key": key or "",
            }
        )
        return entry

    async def zendesk_update(
        ticket_id: str, update: ZendeskUpdate, authorization: str | None, tenant: str | None, key: str | None
    ):
        if not authorization or not authorization.startswith("Basic "):
            raise HTTPException(401, "Couldn't authenticate you")
        check_faults()
        comment = update.ticket.comment
        entry = record(
            "zendesk", ticket_id, comment.body, str(comment.author_id or ""), tenant, key, comment.public
        )
        return {
            "ticket": {"id": ticket_id, "status": "open"},
            "audit": {
                "id": entry["id"],
                "events": [{"type": "Comment", "body": comment.body, "public": comment.public}],
            },
        }

    # Zendesk documents PUT for a ticket update; some clients POST the same body.
    @app.api_route("/api/v2/tickets/{ticket_id}.json", methods=["PUT", "POST"])
    async def zendesk_ticket_update(
        ticket_id: str,
        update: ZendeskUpdate,
        authorization: str | None = Header(None),
        x_clonedesk_tenant: str | None = Header(None),
        idempotency_key: str | None = Header(None),
    ):
        return await zendesk_update(ticket_id, update, authorization, x_clonedesk_tenant, idempotency_key)

    @app.post("/conversations/{conversation_id}/reply")
    async def intercom_reply(
        conversation_id: str,
        reply: IntercomReply,
        authorization: str | None = Header(None),
        x_clonedesk_tenant: str | None = Header(None),
        idempotency_key: str | None = Header(None),
    ):
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(401, "Access Token Invalid")
        check_faults()
        entry = record(
            "intercom",
            conversation_id,
            reply.body,
            str(reply.admin_id or ""),
            x_clonedesk_tenant,
            idempotency_key,
            reply.message_type == "comment",
        )
        return {
            "type": "conversation",
            "id": conversation_id,
            "conversation_parts": {
                "conversation_parts": [
                    {"id": str(entry["id"]), "body": reply.body, "part_type": reply.message_type}
                ]
            },
        }

    def on_ticket(api: str, ticket: str, tenant: str | None) -> list[dict]:
        return [r for r in replies.replies
                if r["api"] == api and r["ticket_id"] == ticket and r["tenant_id"] == (tenant or "")]

    @app.get("/api/v2/tickets/{ticket_id}/comments.json")
    async def zendesk_comments(
        request: Request,
        ticket_id: str,
        sort_order: str = "asc",
        page: int = Query(1, ge=1),
        per_page: int = Query(100, ge=1, le=100),
        authorization: str | None = Header(None),
        x_clonedesk_tenant: str | None = Header(None),
    ):
        if not authorization or not authorization.startswith("Basic "):
            raise HTTPException(401, "Couldn't authenticate you")
        comments = [{"id": r["id"], "type": "Comment", "body": r["body"], "public": r["public"],
                     "author_id": r["author_id"], "created_at": r["received_at"]}
                    for r in on_ticket("zendesk", ticket_id, x_clonedesk_tenant)]
        if sort_order == "desc":
            comments.reverse()
        # Zendesk's offset pagination: `per_page` (at most 100) a page, `next_page` the URL of the next.
        shown = comments[(page - 1) * per_page:page * per_page]
        more = page * per_page < len(comments)
        following = str(request.url.include_query_params(page=page + 1, per_page=per_page)) if more else None
        return {"comments": shown, "count": len(comments), "next_page": following}

    @app.get("/conversations/{conversation_id}")
    async def intercom_conversation(
        conversation_id: str,
        authorization: str | None = Header(None),
        x_clonedesk_tenant: str | None = Header(None),
    ):
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(401, "Access Token Invalid")
        parts = [{"id": str(r["id"]), "part_type": "comment" if r["public"] else "note", "body": r["body"],
                  "author": {"type": "admin", "id": r["author_id"]}}
                 for r in on_ticket("intercom", conversation_id, x_clonedesk_tenant)]
        return {"type": "conversation", "id": conversation_id,
                "conversation_parts": {"type": "conversation_part.list", "conversation_parts": parts}}

    @app.get("/replies")
    async def list_replies(tenant_id: str | None = None, ticket_id: str | None = None):
        found = [
            r
            for r in replies.replies
            if (tenant_id is None or r["tenant_id"] == tenant_id)
            and (ticket_id is None or r["ticket_id"] == ticket_id)
        ]
        posts = sum(
            count
            for (tenant, ticket), count in list(replies.posts.items())
            if (tenant_id is None or tenant == tenant_id) and (ticket_id is None or ticket == ticket_id)
        )
        return {"replies": found, "rejected": replies.rejected, "posts": posts}

    @app.post("/_sim/faults")
    async def set_faults(faults: Faults):
        replies.fail_next, replies.fail_status = faults.fail_next, faults.status
        return {"fail_next": faults.fail_next, "status": faults.status}

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.exception_handler(HTTPException)
    async def vendor_style_errors(request: Request, exc: HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    return app
