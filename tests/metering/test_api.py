"""The analytics API and dashboard over HTTP on a real uvicorn server, the store on chDB; the dashboard
is opened by headless Chromium."""

import subprocess
import uuid
from datetime import datetime, timezone

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clonedesk.core.telemetry import setup_telemetry

from clonedesk.core.tenants import TenantStore, admin_api_key
from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.domain.billing import Month
from clonedesk.metering.domain.terms import Terms
from clonedesk.metering.entrypoints.api import create_app
from clonedesk.metering.service_layer.settlement import record_and_settle, terms_from_tenants
from tests.metering.helpers import ApiServer, scenario

pytestmark = pytest.mark.integration

START = datetime(2026, 10, 3, 6, tzinfo=timezone.utc)


@pytest.fixture
def served(tmp_path, clickhouse_client, unique_database):
    data_dir = tmp_path / "data"
    tenants = TenantStore(data_dir)
    tenant = tenants.add("acme-" + uuid.uuid4().hex[:6])
    tenant.plan.free_units = 10
    tenants.save(tenant)
    other = tenants.add("other-" + uuid.uuid4().hex[:6])
    store = MeteringStore(clickhouse_client, unique_database)
    store.migrate()
    replies, outcomes = scenario(tenant.id, START, 150, every_hours=4)
    record_and_settle(store, replies, outcomes, terms_from_tenants(data_dir))
    spans = InMemorySpanExporter()
    telemetry = setup_telemetry("api-test", span_processors=[SimpleSpanProcessor(spans)], set_global=False)
    with ApiServer(create_app(store, data_dir, tracer=telemetry.tracer)) as server:
        server.spans = spans
        server.data_dir = data_dir
        yield server, store, tenant, other, admin_api_key(data_dir), (replies, outcomes)


def get(server, path, key=None, **params):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(server.url + path, params=params, headers=headers, timeout=30)


def test_auth_and_bad_parameters(served):
    server, _, tenant, other, admin, _ = served
    path = f"/v1/tenants/{tenant.id}/invoice"
    assert get(server, path, month="2026-10").status_code == 401
    assert get(server, path, "cdk_wrong", month="2026-10").status_code == 401
    assert get(server, path, other.api_key, month="2026-10").status_code == 403
    assert get(server, path, tenant.api_key, month="2026-10").status_code == 200
    assert get(server, path, admin, month="2026-10").status_code == 200
    assert get(server, "/v1/tenants/nobody-here/invoice", admin, month="2026-10").status_code == 404
    assert get(server, "/v1/tenants/nobody-here/invoice", tenant.api_key, month="2026-10").status_code == 403
    for bad in ("2026-13", "oct", "2026-1", "", "0000-01", "9999-12"):
        assert get(server, path, tenant.api_key, month=bad).status_code == 422, bad
    assert get(server, path, tenant.api_key).status_code == 422
    usage = f"/v1/tenants/{tenant.id}/usage"
    assert get(server, usage, tenant.api_key, granularity="minute").status_code == 422
    assert get(server, usage, tenant.api_key, granularity="hour").status_code == 200
    assert get(server, usage, tenant.api_key, **{"from": "2026-10-09", "to": "2026-10-01"}).status_code == 422
    assert get(server, usage, tenant.api_key, **{"from": "2026-02-30"}).status_code == 422
    assert get(server, usage, tenant.api_key, **{"from": "0001-01-01", "to": "0001-02-01"}).status_code == 422
    assert get(server, usage, tenant.api_key, **{"from": "2024-01-01", "to": "2026-01-01"}).status_code == 422
    listing = f"/v1/tenants/{tenant.id}/resolutions"
    assert get(server, listing, tenant.api_key, limit=0).status_code == 422
    assert get(server, listing, tenant.api_key, state="won").status_code == 422


def test_invoice_matches_the_store_and_plan(served):
    server, store, tenant, _, _, _ = served
    body = get(server, f"/v1/tenants/{tenant.id}/invoice", tenant.api_key, month="2026-10").json()
    statement = {"status", "closes_at", "closed_at", "free_allowance"}
    assert {k: v for k, v in body.items() if k not in statement} == store.invoice(
        tenant.id, Month(2026, 10), Terms(free_units=10)).to_json()
    assert set(body) == {"tenant_id", "month", "resolutions", "billable_units", "free_units", "charged_units",
                         "unit_price_usd", "credit_units", "credits_usd", "total_usd",
                         "dispute_credit_units", "dispute_credits_usd"} | statement
    # the scenario's watermark is before Nov 9 (Oct 31 + the 24 h assumed and 7 day reopen windows)
    assert (body["status"], body["closes_at"], body["closed_at"]) == ("open", "2026-11-09T00:00:00Z", None)
    assert set(body["resolutions"]) == {"confirmed", "assumed", "escalated", "reopened", "pending"}
    route = "GET /v1/tenants/{tenant_id}/invoice"
    span = next(s for s in server.spans.get_finished_spans() if s.name == route)
    assert span.attributes["http.response.status_code"] == 200 and tenant.api_key not in str(span.attributes)
    assert body["free_units"] == 10 and body["charged_units"] == body["billable_units"] - 10 > 0


def test_usage_figures(served):
    server, _, tenant, _, _, (replies, outcomes) = served
    body = get(server, f"/v1/tenants/{tenant.id}/usage", tenant.api_key,
               **{"from": "2026-10-03", "to": "2026-10-12", "granularity": "day"}).json()
    in_range = [r for r in replies if r.created_at < datetime(2026, 10, 13, tzinfo=timezone.utc)]
    assert body["resolutions"]["total"] == len(in_range)
    assert [p["period"] for p in body["series"]] == [f"2026-10-{d:02d}" for d in range(3, 13)]
    counts = body["resolutions"]
    known = counts["total"] - counts["pending"]
    assert body["resolution_rate"] == round((counts["confirmed"] + counts["assumed"]) / known, 4)
    assert body["escalation_rate"] == round(counts["escalated"] / known, 4)
    assert 1 <= body["csat"]["average"] <= 5
    assert sum(body["csat"]["distribution"].values()) == body["csat"]["count"]
    assert {c["category"] for c in body["by_category"]} == {"billing", "travel", "account"}
    assert sum(c["total"] for c in body["by_category"]) == len(in_range)
    assert body["latency_ms"]["p50_ms"] <= body["latency_ms"]["p95_ms"] <= body["latency_ms"]["max_ms"]


def test_resolutions_are_paged_without_overlap(served):
    server, _, tenant, _, _, (replies, _) = served
    seen, offset = [], 0
    while offset is not None:
        page = get(server, f"/v1/tenants/{tenant.id}/resolutions", tenant.api_key, limit=40,
                   offset=offset).json()
        assert page["total"] == len(replies) and len(page["items"]) <= 40
        seen += [item["resolution_id"] for item in page["items"]]
        offset = page["next_offset"]
    assert sorted(seen) == sorted(r.resolution_id for r in replies)
    escalated = get(server, f"/v1/tenants/{tenant.id}/resolutions", tenant.api_key, state="escalated").json()
    assert escalated["total"] > 0 and {i["state"] for i in escalated["items"]} == {"escalated"}


def test_dashboard_in_headless_chromium(served, tmp_path):
    server, store, tenant, other, _, _ = served
    invoice = store.invoice(tenant.id, Month(2026, 10), Terms(free_units=10))
    assert get(server, f"/tenants/{tenant.id}", month="2026-10").status_code == 401
    assert get(server, f"/tenants/{tenant.id}", other.api_key, month="2026-10").status_code == 403
    _two_adapter_versions(server.data_dir, tenant.id)
    url = f"{server.url}/tenants/{tenant.id}?month=2026-10&key={tenant.api_key}"
    dom = chromium(url, tmp_path, "--dump-dom")
    assert invoice.total > 0 and f'<div class="value" id="spend">${invoice.total}</div>' in dom
    # October is over: its forecast is what it came to
    assert f'<div class="value" id="forecast">${invoice.total}</div>' in dom
    assert '<div class="value" id="free-units-left">0 of 10</div>' in dom
    assert f'id="billable-units">{invoice.billable_units}<' in dom
    assert 'id="resolution-rate-chart"' in dom and 'id="csat-chart"' in dom and "Resolution rate by day" in dom
    assert "2026-10-31" in dom  # the x axis runs through the month
    # the panels: resolution rate by category, escalations by reason, the adapter versions with their scores
    categories = dom[dom.index('id="by-category"'):]
    assert all(f"<th>{name}</th>" in categories for name in ("billing", "travel", "account"))
    escalations = dom[dom.index('id="escalations"'):dom.index("</table>", dom.index('id="escalations"'))]
    assert "a human took over" in escalations and "no reply" in escalations  # the scenario's two kinds
    versions = dom[dom.index('id="adapter-versions"'):]
    assert "v2 (current)" in versions and "62.5%" in versions and "71.0%" in versions
    assert "58.3%" in versions  # v1's accuracy preview
    assert 'id="versions-chart"' in dom and dom.count("<polyline") == 3
    shot = tmp_path / "dashboard.png"
    chromium(url, tmp_path, f"--screenshot={shot}", "--window-size=1280,2600")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def chromium(url, tmp_path, *what) -> str:
    return subprocess.run(
        ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'chromium'}", *what, url],
        capture_output=True, text=True, timeout=120, check=True, cwd=tmp_path).stdout


def _two_adapter_versions(data_dir, tenant_id):
    """Two versions as the trainer's registry writes them (meta.json), the second current."""
    import json

    from clonedesk.core.adapters import set_current_version, version_dir

    for version, accuracy, trigger in ((1, 0.625, "first"), (2, 0.71, "refresh:new-samples")):
        folder = version_dir(data_dir, tenant_id, version)
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(json.dumps({
            "version": version, "created_at": 1790000000.0 + version * 3600, "status": "promoted",
            "trigger": trigger, "sample_count": 400 * version,
            "metrics": {"decision_accuracy": accuracy, "reply_chrf": 30.0 + version, "answered_share": 0.6}}))
    (version_dir(data_dir, tenant_id, 1) / "preview.json").write_text(json.dumps({"adapter": {"decision_accuracy": 0.583}}))
    set_current_version(data_dir, tenant_id, 2)


def test_the_dashboard_draws_hours_when_the_activity_spans_under_three_days(tmp_path, clickhouse_client,
                                                                         unique_database):
    data_dir = tmp_path / "data"
    tenant = TenantStore(data_dir).add("demo-" + uuid.uuid4().hex[:6])
    store = MeteringStore(clickhouse_client, unique_database)
    store.migrate()
    replies, outcomes = scenario(tenant.id, datetime(2026, 10, 5, 9, tzinfo=timezone.utc), 12, every_hours=0.5)
    record_and_settle(store, replies, outcomes, terms_from_tenants(data_dir))
    with ApiServer(create_app(store, data_dir)) as server:
        page = get(server, f"/tenants/{tenant.id}", tenant.api_key, month="2026-10")
        assert page.status_code == 200
    assert "Resolution rate by hour" in page.text and "2026-10-05T09:00" in page.text
    assert "2026-10-05T14:00" in page.text and "2026-10-31" not in page.text  # 09:00 to 14:30, by hour
    figures = store.usage(tenant.id, datetime(2026, 10, 5, tzinfo=timezone.utc),
                          datetime(2026, 10, 6, tzinfo=timezone.utc), "hour")
    assert [p.period for p in figures["periods"]][:2] == ["2026-10-05T09:00", "2026-10-05T10:00"]
    assert sum(sum(p.counts.values()) for p in figures["periods"]) == 12


@pytest.fixture
def empty_store(clickhouse_client, unique_database):
    store = MeteringStore(clickhouse_client, unique_database)
    store.migrate()
    return store


def test_admin_key_from_the_setting_writes_nothing_to_the_data_dir(tmp_path, empty_store, monkeypatch):
    from clonedesk.metering.settings import MeteringSettings
    from clonedesk.metering.bootstrap import analytics_app

    data_dir = tmp_path / "data"
    tenant = TenantStore(data_dir).add("acme-" + uuid.uuid4().hex[:6])
    monkeypatch.setenv("CLONEDESK_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CLONEDESK_ADMIN_API_KEY", "cdk_admin_from_the_environment")
    settings = MeteringSettings()
    assert settings.admin_api_key == "cdk_admin_from_the_environment"
    path = f"/v1/tenants/{tenant.id}/invoice"
    with ApiServer(analytics_app(empty_store, settings)) as server:
        assert get(server, path, "cdk_admin_from_the_environment", month="2026-10").status_code == 200
        unknown = "/v1/tenants/nobody/invoice"
        assert get(server, unknown, settings.admin_api_key, month="2026-10").status_code == 404
        assert get(server, path, tenant.api_key, month="2026-10").status_code == 200
        assert not (data_dir / "admin_key").exists()
        # the setting is the one admin key: a key file (an old one, say) does not open the API
        file_key = admin_api_key(data_dir)
        assert get(server, path, file_key, month="2026-10").status_code == 401


def test_a_data_dir_without_a_key_file_that_cannot_take_one_disables_admin_access_only(
        tmp_path, empty_store, monkeypatch, caplog):
    import errno

    from clonedesk.core import tenants as tenants_module

    data_dir = tmp_path / "data"
    tenant = TenantStore(data_dir).add("acme-" + uuid.uuid4().hex[:6])

    def read_only_mount(path, *_args, **_kwargs):  # what the api pod's read-only /data answers (even root)
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(tenants_module, "_write_private", read_only_mount)
    path = f"/v1/tenants/{tenant.id}/invoice"
    with ApiServer(create_app(empty_store, data_dir)) as server:
        for _ in range(2):
            assert get(server, path, tenant.api_key, month="2026-10").status_code == 200
            assert get(server, path, "cdk_admin_guessed", month="2026-10").status_code == 401
            assert get(server, path, month="2026-10").status_code == 401
    assert not (data_dir / "admin_key").exists()
    assert sum("admin access disabled" in r.getMessage() for r in caplog.records) == 1


class UnreachableClickHouse:
    """A ClickHouse server gone away: every query fails the way clickhouse-connect reports it."""

    def query(self, *_args, **_kwargs):
        from clickhouse_connect.driver.exceptions import OperationalError

        raise OperationalError("Error HTTPConnectionPool(host='clickhouse', port=8123): connection refused")


class HangingClickHouse:
    def __init__(self):
        import threading

        self.release = threading.Event()

    def query(self, *_args, **_kwargs):
        self.release.wait(30)
        raise TimeoutError("no answer")


def test_readiness_follows_clickhouse(tmp_path, empty_store, clickhouse_client, monkeypatch):
    from clonedesk.metering.entrypoints import api as api_module

    data_dir = tmp_path / "data"
    with ApiServer(create_app(empty_store, data_dir)) as server:
        assert get(server, "/readyz").status_code == 200
    down = MeteringStore(UnreachableClickHouse(), "clonedesk")
    unmigrated = MeteringStore(clickhouse_client, "t_" + uuid.uuid4().hex[:12])
    for store in (down, unmigrated):
        with ApiServer(create_app(store, data_dir)) as server:
            response = get(server, "/readyz")
            assert response.status_code == 503 and response.headers["retry-after"] == "2"
            assert get(server, "/healthz").status_code == 200  # alive, only not ready
    monkeypatch.setattr(api_module, "READY_TIMEOUT_S", 0.5)
    hanging = HangingClickHouse()
    with ApiServer(create_app(MeteringStore(hanging, "clonedesk"), data_dir)) as server:
        try:
            assert get(server, "/readyz").status_code == 503
        finally:
            hanging.release.set()


def test_embedded_readiness_is_the_metering_process_answering_through_its_socket(tmp_path, empty_store):
    import uvicorn

    from clonedesk.metering.settings import MeteringSettings
    from clonedesk.metering.entrypoints.proxy import create_proxy_app
    from clonedesk.metering.entrypoints.service import ThreadedServer

    socket = MeteringSettings(data_dir=tmp_path / "data").metering_socket
    socket.parent.mkdir(parents=True, exist_ok=True)
    with ApiServer(create_proxy_app(socket)) as proxy:
        assert get(proxy, "/readyz").status_code == 503  # the metering process is not up yet
        assert get(proxy, "/healthz").status_code == 200
        for store, status in ((empty_store, 200), (MeteringStore(UnreachableClickHouse(), "clonedesk"), 503)):
            metering = ThreadedServer(uvicorn.Config(create_app(store, tmp_path / "data"), uds=str(socket),
                                                     log_level="warning", log_config=None))
            metering.start()
            try:
                assert get(proxy, "/readyz").status_code == status
            finally:
                metering.stop()
                socket.unlink(missing_ok=True)
        assert get(proxy, "/readyz").status_code == 503
