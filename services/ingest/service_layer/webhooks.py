"""Accepting one webhook: tenant, signature, JSON, shape, then the acknowledged write to `helpdesk.events`,
and only then an answer. Checks run cheapest-first and before anything is written; each refusal is a
`Rejected` with the HTTP status it stands for (the entrypoint measures the body size before this)."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping

from clonedesk.core.domain.tenants import Tenant
from clonedesk.core.kafka import BrokerUnavailable
from clonedesk.core.signatures import BadSignature
from clonedesk.core.tenants import TenantStore, UnknownTenant
from clonedesk.ingest.domain.events import MAX_JSON_DEPTH, Normalised, WrongShape, payload_problem

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5

Verify = Callable[[Tenant, Mapping[str, str], bytes], None]  # raises BadSignature
Normalise = Callable[[str, object], Normalised]


class Rejected(Exception):
    def __init__(self, status: int, reason: str, headers: dict | None = None):
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers or {}


def retry_later(reason: str) -> Rejected:
    """503 with Retry-After: the vendor retries, and the retry carries the same ids."""
    return Rejected(503, reason, {"Retry-After": str(RETRY_AFTER_S)})


@dataclass
class Accepted:
    """What a webhook became: the ids of the events written, or the valid type it was and we ignore."""

    event_ids: list[str] = field(default_factory=list)
    ignored: str | None = None
    ticket_id: str = ""


class _NotFinite(ValueError):
    pass


def _refuse_constant(_name: str):
    raise _NotFinite  # NaN, Infinity, -Infinity: not JSON, though Python's reader takes them


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999 reads as infinity
        raise _NotFinite
    return value


# One decoder for every request: `json.loads` with hooks builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def parse_json(body: bytes):
    """The body as JSON, or why it is not a webhook: 400 when it does not parse, 422 for a number that is
    not finite or nesting deeper than MAX_JSON_DEPTH."""
    try:
        payload = _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except _NotFinite:
        raise Rejected(422, "a number that is not finite") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Rejected(400, f"malformed JSON: {exc}") from None
    except RecursionError:
        raise Rejected(400, f"malformed JSON: nested deeper than {MAX_JSON_DEPTH} levels") from None
    # The decoder refused the numbers above; only depth is left to check, and it cannot exceed the count
    # of brackets, so a webhook's usual handful skips the walk over every value.
    if body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH:
        problem = payload_problem(payload)
        if problem:
            raise Rejected(422, problem)
    return payload


class WebhookIntake:
    """The use case, given what it works with: the tenant store, an event writer (`write(events)` awaits the
    broker's acknowledgement or raises BrokerUnavailable), and whether the broker is being restarted."""

    def __init__(self, tenants: TenantStore, write: Callable[[list], Awaitable[int]],
                 broker_held: Callable[[], bool]):
        self.tenants = tenants
        self.write = write
        self.broker_held = broker_held

    def tenant(self, tenant_id: str) -> Tenant:
        try:
            return self.tenants.get(tenant_id)  # re-read per request: a tenant added while running works at once
        except UnknownTenant:
            raise Rejected(404, f"unknown tenant {tenant_id!r}") from None

    async def accept(self, vendor: str, tenant_id: str, headers: Mapping[str, str], body: bytes,
                     verify: Verify, normalise: Normalise) -> Accepted:
        tenant = self.tenant(tenant_id)
        try:
            verify(tenant, headers, body)
        except BadSignature as exc:
            raise Rejected(401, str(exc)) from None
        payload = parse_json(body)
        try:
            normalised = normalise(tenant.id, payload)
        except (WrongShape, ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            # A value of the wrong kind anywhere (a list for an id, a time no calendar holds) is the
            # sender's mistake: 422 with the reason, never a 500.
            raise Rejected(422, f"not a {vendor} webhook: {type(exc).__name__}: {exc}"[:500]) from None
        if normalised.ignored:
            log.info("ignored a webhook type", extra={"vendor": vendor, "type": normalised.ignored,
                                                      "tenant": tenant.id})
            return Accepted(ignored=normalised.ignored)
        received_ns = time.time_ns()  # protobuf's GetCurrentTime goes through a datetime: four times slower
        for event in normalised.events:
            event.received_at.FromNanoseconds(received_ns)
        try:
            await self.write(normalised.events)
            if self.broker_held():  # acknowledged by a broker that has since died: say so
                raise BrokerUnavailable("the broker restarted while the write was in flight")
        except BrokerUnavailable as exc:
            raise retry_later(str(exc)) from None
        return Accepted(event_ids=[e.event_id for e in normalised.events],
                        ticket_id=normalised.events[0].ticket_id if normalised.events else "")
