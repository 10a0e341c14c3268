"""The analytics API and dashboard (FastAPI).

Bearer auth: a tenant's API key reads only that tenant (403 otherwise); the admin key reads every
tenant (404 for one that does not exist; see adapters/admin_key.py for where it comes from). The
dashboard also takes the key as `?key=`, so a browser can open it as a link.

`/healthz` says the process is up; `/readyz` that ClickHouse answers (503 otherwise).

(No `from __future__ import annotations` here: FastAPI must see the route annotations as objects.)
"""

import asyncio
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Tracer
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from clonedesk.core.tenants import Tenant, TenantStore
from clonedesk.metering.adapters.admin_key import admin_key_source
from clonedesk.metering.adapters.store import MeteringStore, UsagePeriod
from clonedesk.metering.domain.disputes import MAX_NOTE_CHARS, MAX_REASON_CHARS, STATUSES, DisputeRefused
from clonedesk.metering.service_layer.disputes import decide_dispute, open_dispute
from clonedesk.metering.service_layer.statements import resolution_evidence, statement_json
from clonedesk.core.adapters import version_history
from clonedesk.metering.domain.analytics import (action_figures, chart_granularity, escalation_rate,
                                                 escalations_by_kind, month_forecast, resolution_rate)
from clonedesk.metering.domain.billing import FIRST_YEAR, LAST_YEAR, Month, invoice_from_json
from clonedesk.metering.domain.lifecycle import STATES, Lifecycle
from clonedesk.metering.domain.terms import Terms
from clonedesk.metering.entrypoints.dashboard import render_dashboard

MAX_RANGE_DAYS = 366
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
# A readiness probe wants an answer soon; a ClickHouse that takes longer than this is not ready.
READY_TIMEOUT_S = 5.0
RETRY_AFTER_S = 2
# A dispute's reason or a decision's note, with room: anything bigger is not a request to this API.
MAX_BODY_BYTES = 16 * 1024


def body_too_large(request: Request) -> bool:
    length = request.headers.get("content-length")
    return bool(length) and (not length.isdigit() or int(length) > MAX_BODY_BYTES)


def _day(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, f"invalid {name} {text!r}: use YYYY-MM-DD") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise HTTPException(422, f"invalid {name} {text!r}: the year must be within"
                                 f" {FIRST_YEAR}..{LAST_YEAR}")
    return day


def _month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def _range(start: str | None, end: str | None, default_days: int = 30) -> tuple[date, date]:
    """[from, to] as whole UTC days, both included; defaults to the last `default_days` days."""
    last = _day(end, "to") or datetime.now(timezone.utc).date()
    first = _day(start, "from") or last - timedelta(days=default_days - 1)
    if first > last:
        raise HTTPException(422, "from is after to")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise HTTPException(422, f"the range is longer than {MAX_RANGE_DAYS} days")
    return first, last


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


# Resolution ids are uuids (resolver.domain.requests); anything else is no resolution of ours.
RESOLUTION_ID = re.compile(r"[A-Za-z0-9._:-]{1,200}")


def _json_times(value):
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, dict):
        return {k: _json_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_times(v) for v in value]
    return value


class DisputeBody(BaseModel):
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


class DecisionBody(BaseModel):
    note: str = Field(default="", max_length=MAX_NOTE_CHARS)


def dispute_json(dispute) -> dict:
    return _json_times(dispute.to_json())


def lifecycle_json(life: Lifecycle) -> dict:
    return {"resolution_id": life.resolution_id, "ticket_id": life.ticket_id, "state": life.state.value,
            "decision": life.decision, "category": life.category, "created_at": _iso(life.created_at),
            "state_at": _iso(life.state_at), "billed_at": _iso(life.billed_at),
            "reopened_at": _iso(life.reopened_at), "csat_score": life.csat_score or None,
            "latency_ms": life.latency_ms}


def usage_json(tenant_id: str, first: date, last: date, granularity: str, usage: dict) -> dict:
    totals = {state.value: 0 for state in STATES}
    series = []
    actions_by_period: dict[str, list] = {}
    for period, status, n, avg in usage.get("actions", []):
        actions_by_period.setdefault(period, []).append((status, n, avg))
    for period in usage["periods"]:
        for state, n in period.counts.items():
            totals[state] += n
        series.append({"period": period.period, "resolutions": period.counts,
                       "total": sum(period.counts.values()),
                       "resolution_rate": resolution_rate(period.counts),
                       "escalation_rate": escalation_rate(period.counts),
                       "csat_average": None if period.csat_average is None else round(period.csat_average, 3),
                       "csat_count": period.csat_count,
                       "actions": action_figures(actions_by_period.get(period.period, []))})
    categories = [{"category": name, "resolutions": counts, "total": sum(counts.values()),
                   "resolution_rate": resolution_rate(counts), "escalation_rate": escalation_rate(counts),
                   "csat_average": None if avg is None else round(avg, 3), "csat_count": n}
                  for name, counts, avg, n in usage["categories"]]
    csat = dict(usage["csat"])
    if csat["average"] is not None:
        csat["average"] = round(csat["average"], 3)
    return {"tenant_id": tenant_id, "from": first.isoformat(), "to": last.isoformat(),
            "granularity": granularity,
            "resolutions": {**totals, "total": sum(totals.values())},
            "resolution_rate": resolution_rate(totals), "escalation_rate": escalation_rate(totals),
            "csat": csat, "latency_ms": usage["latency"], "series": series, "by_category": categories,
            "actions": action_figures([row[1:] for row in usage.get("actions", [])])}


def create_app(store: MeteringStore, data_dir: Path, *, admin_key: str | None = None, lifespan=None,
               tracer: Tracer | None = None) -> FastAPI:
    """The app over `store`; `admin_key` is the configured admin key (None: the data dir's key file)."""
    tenants = TenantStore(data_dir)
    current_admin_key = admin_key_source(data_dir, admin_key)
    # One thread for readiness queries: a hung ClickHouse queues them there instead of piling up threads.
    readiness = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metering-readyz")
    # Our `traced` middleware below is the one server span per request; FastAPI's own would be a second,
    # plus one per operation (its request metrics stay).
    app = FastAPI(title="CloneDesk analytics", version="1", lifespan=lifespan,
                  telemetry={"tracing": False, "operation_spans": False})
    tracer = tracer or trace.get_tracer("clonedesk.metering.api")

    @app.middleware("http")
    async def traced(request: Request, call_next):
        # One server span per request, named by its route template (never by tenant id or key).
        with tracer.start_as_current_span(f"{request.method} request", kind=SpanKind.SERVER) as span:
            if body_too_large(request):
                return JSONResponse({"detail": f"the body is larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
            response = await call_next(request)
            route = request.scope.get("route")
            if route is not None:
                span.update_name(f"{request.method} {route.path}")
                span.set_attribute("http.route", route.path)
            span.set_attribute("http.request.method", request.method)
            span.set_attribute("http.response.status_code", response.status_code)
            return response

    def bearer(request: Request, allow_query_key: bool = False) -> str:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not token and allow_query_key:
            token = request.query_params.get("key", "")
        if not token:
            raise HTTPException(401, "missing bearer API key", headers={"WWW-Authenticate": "Bearer"})
        return token

    def is_admin(token: str) -> bool:
        admin = current_admin_key()
        return admin is not None and secrets.compare_digest(token.encode(), admin.encode())

    def require_admin(request: Request) -> None:
        token = bearer(request)
        if is_admin(token):
            return
        if tenants.by_api_key(token) is None:
            raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
        raise HTTPException(403, "only the operator (the admin key) decides disputes")

    def authorize(request: Request, tenant_id: str, allow_query_key: bool = False) -> Tenant:
        token = bearer(request, allow_query_key)
        if is_admin(token):
            record = tenants.find(tenant_id)
            if record is None:
                raise HTTPException(404, f"unknown tenant {tenant_id!r}")
            return record
        caller = tenants.by_api_key(token)
        if caller is None:
            raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
        if caller.id != tenant_id:
            raise HTTPException(403, "this key reads only its own tenant")
        return caller

    def api_tenant(request: Request, tenant_id: str) -> Tenant:
        return authorize(request, tenant_id)

    def page_tenant(request: Request, tenant_id: str) -> Tenant:
        return authorize(request, tenant_id, allow_query_key=True)

    ApiTenant = Annotated[Tenant, Depends(api_tenant)]
    StateName = Literal["pending", "confirmed", "assumed", "escalated", "reopened"]

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        try:
            answered = await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(readiness, store.ready), READY_TIMEOUT_S)
        except asyncio.TimeoutError:
            answered = False
        if answered:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "clickhouse unreachable"}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_S)})

    @app.get("/v1/tenants/{tenant_id}/invoice")
    def invoice(tenant: ApiTenant, month: Annotated[str, Query(pattern=MONTH_PATTERN)]) -> dict:
        """The month's statement: `status` open (it may still change) or closed (frozen, as issued)."""
        return statement_json(store, tenant.id, _month(month), Terms.from_plan(tenant.plan))

    @app.get("/v1/tenants/{tenant_id}/usage")
    def usage(tenant: ApiTenant, start: Annotated[str | None, Query(alias="from")] = None,
              end: Annotated[str | None, Query(alias="to")] = None,
              granularity: Literal["hour", "day", "week", "month"] = "day") -> dict:
        first, last = _range(start, end)
        figures = store.usage(tenant.id, _midnight(first), _midnight(last + timedelta(days=1)), granularity)
        return usage_json(tenant.id, first, last, granularity, figures)

    @app.get("/v1/tenants/{tenant_id}/resolutions")
    def resolutions(tenant: ApiTenant, state: StateName | None = None,
                    start: Annotated[str | None, Query(alias="from")] = None,
                    end: Annotated[str | None, Query(alias="to")] = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50,
                    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> dict:
        first, last = _day(start, "from"), _day(end, "to")
        if first and last and first > last:
            raise HTTPException(422, "from is after to")
        total, items = store.resolutions(tenant.id, state=state, start=_midnight(first) if first else None,
                                         end=_midnight(last + timedelta(days=1)) if last else None,
                                         limit=limit, offset=offset)
        following = offset + len(items)
        return {"tenant_id": tenant.id, "total": total, "limit": limit, "offset": offset,
                "next_offset": following if following < total else None,
                "items": [lifecycle_json(item) for item in items]}

    @app.get("/v1/tenants/{tenant_id}/resolutions/{resolution_id}")
    def resolution(tenant: Annotated[Tenant, Depends(page_tenant)], resolution_id: str) -> dict:
        """The evidence of one resolution: the conversation answered, the answer, every outcome event, the
        state history and the statement line it is billed on. A browser link may carry `?key=`."""
        if not RESOLUTION_ID.fullmatch(resolution_id):
            raise HTTPException(404, "unknown resolution")
        evidence = resolution_evidence(store, tenant.id, resolution_id, Terms.from_plan(tenant.plan))
        if evidence is None:
            raise HTTPException(404, "unknown resolution")
        return _json_times(evidence)

    def refused(exc: DisputeRefused) -> HTTPException:
        return HTTPException(exc.status, str(exc))

    def known_resolution(resolution_id: str) -> str:
        if not RESOLUTION_ID.fullmatch(resolution_id):
            raise HTTPException(404, "unknown resolution")
        return resolution_id

    @app.post("/v1/tenants/{tenant_id}/resolutions/{resolution_id}/dispute")
    def dispute(tenant: ApiTenant, resolution_id: str, body: DisputeBody) -> JSONResponse:
        """Dispute a billed resolution's charge: 201 with the dispute, 200 with the same dispute when it
        was disputed before; 404 unknown, 409 nothing billed (or already reversed), 422 no reason."""
        try:
            found, created = open_dispute(store, tenant.id, known_resolution(resolution_id), body.reason)
        except DisputeRefused as exc:
            raise refused(exc) from None
        return JSONResponse(dispute_json(found), status_code=201 if created else 200)

    @app.post("/v1/tenants/{tenant_id}/resolutions/{resolution_id}/dispute/{verdict}",
              dependencies=[Depends(require_admin)])
    def decide(tenant: ApiTenant, resolution_id: str, verdict: Literal["accept", "reject"],
               body: DecisionBody | None = None) -> dict:
        """The operator's decision (admin key): accepting credits what the charge cost in the first open
        month from now; deciding the same way again is the same answer, the other way 409."""
        try:
            found, _ = decide_dispute(store, tenant.id, known_resolution(resolution_id), verdict == "accept",
                                      body.note if body else "", Terms.from_plan(tenant.plan))
        except DisputeRefused as exc:
            raise refused(exc) from None
        return dispute_json(found)

    @app.get("/v1/tenants/{tenant_id}/disputes")
    def tenant_disputes(tenant: ApiTenant, status: Literal[STATUSES] | None = None) -> dict:
        return {"tenant_id": tenant.id,
                "items": [dispute_json(d) for d in store.disputes(tenant.id, status=status)]}

    @app.get("/v1/disputes", dependencies=[Depends(require_admin)])
    def all_disputes(status: Literal[STATUSES] | None = None) -> dict:
        """Every tenant's disputes (admin key), newest first: the operator's queue."""
        return {"items": [dispute_json(d) for d in store.disputes(None, status=status)]}

    @app.get("/tenants/{tenant_id}", response_class=HTMLResponse)
    def dashboard(request: Request, tenant: Annotated[Tenant, Depends(page_tenant)],
                  month: Annotated[str | None, Query(pattern=MONTH_PATTERN)] = None) -> HTMLResponse:
        now = datetime.now(timezone.utc)
        chosen = _month(month) if month else Month.of(now)
        terms = Terms.from_plan(tenant.plan)
        bill = invoice_from_json(statement_json(store, tenant.id, chosen, terms), terms.free_units)
        first, latest_at = store.activity_span(tenant.id, chosen.start, chosen.end)
        granularity = chart_granularity(first, latest_at)
        if granularity == "hour":  # every hour of the activity on the x axis
            start = first.replace(minute=0, second=0, microsecond=0)
            labels = [(start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M")
                      for i in range(int((latest_at - start) / timedelta(hours=1)) + 1)]
            figures = store.usage(tenant.id, start, start + timedelta(hours=len(labels)), "hour")
            first_day, last_day = start.date(), latest_at.date()
        else:  # every day of the month, so the charts read as a calendar
            last_day = (chosen.end - timedelta(days=1)).date()
            first_day = chosen.start.date()
            labels = [(chosen.start + timedelta(days=i)).date().isoformat()
                      for i in range((last_day - first_day).days + 1)]
            figures = store.usage(tenant.id, chosen.start, chosen.end, "day")
        by_period = {p.period: p for p in figures["periods"]}
        empty = {state.value: 0 for state in STATES}
        figures["periods"] = [by_period.get(label, UsagePeriod(label, empty, None, 0)) for label in labels]
        body = usage_json(tenant.id, first_day, last_day, granularity, figures)
        _, latest = store.resolutions(tenant.id, state=None, start=chosen.start, end=chosen.end, limit=50, offset=0)
        escalations = escalations_by_kind(store.escalation_reasons(tenant.id, chosen.start, chosen.end))
        return HTMLResponse(render_dashboard(
            bill, body, [lifecycle_json(item) for item in latest], request.query_params.get("key"),
            escalations=escalations, versions=version_history(data_dir, tenant.id),
            forecast=month_forecast(bill.total, chosen.start, chosen.end, now), granularity=granularity))

    return app
