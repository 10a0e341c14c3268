"""Property-based: every analytics API operation on a real uvicorn server (store on chDB), called with
arbitrary tenant ids, months, dates and paging values, by a tenant key and by the admin key: the answer
is 2xx, 400, 401, 403, 404 or 422, never a 5xx."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clonedesk.core.tenants import TenantStore, admin_api_key
from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.entrypoints.api import create_app
from tests.metering.helpers import ApiServer

pytestmark = pytest.mark.integration

OPERATIONS = ["/v1/tenants/{t}/invoice", "/v1/tenants/{t}/usage", "/v1/tenants/{t}/resolutions", "/tenants/{t}",
              "/v1/tenants/{t}/invoice?month={month}"]
ODD = st.one_of(st.text(max_size=30), st.sampled_from(["\x06", "\x00", "\U00105000", "acme\n", "../admin_key",
                                                      "%", "%F4%85", "é", " ", "a" * 300, "2026-10", "-1",
                                                      "9999-99", "0000-01", "2026-10-01", "1e30"]))


@pytest.fixture
def served(tmp_path, clickhouse_client):
    import uuid

    data_dir = tmp_path / "data"
    tenant = TenantStore(data_dir).add("acme")
    store = MeteringStore(clickhouse_client, "t_" + uuid.uuid4().hex[:12])
    store.migrate()
    with ApiServer(create_app(store, data_dir)) as server:
        yield server, tenant, admin_api_key(data_dir)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(operation=st.sampled_from(OPERATIONS), tenant_id=ODD, month=ODD, params=st.dictionaries(
    st.sampled_from(["from", "to", "granularity", "state", "limit", "offset", "month", "key"]), ODD, max_size=4),
    as_admin=st.booleans(), own_tenant=st.booleans())
def test_no_input_reaches_a_5xx(served, operation, tenant_id, month, params, as_admin, own_tenant):
    server, tenant, admin = served
    path = operation.format(t=quote("acme" if own_tenant else tenant_id, safe=""), month=quote(month, safe=""))
    if "?" in path:
        params = {}
    key = admin if as_admin else tenant.api_key
    response = httpx.get(server.url + path, params=params, headers={"Authorization": f"Bearer {key}"},
                         timeout=30)
    assert response.status_code < 500, (path, params, response.status_code, response.text[:300])


BODIES = st.one_of(st.none(), st.binary(max_size=200), st.sampled_from([
    b"{}", b"[]", b"null", b'{"reason": ""}', b'{"reason": 5}', b'{"reason": "\\u0000"}', b'{"note": [1]}',
    b'{"reason": "' + b"x" * 3000 + b'"}', b'{"reason": {"a": {"b": {}}}}', b"\xff\xfe", b'{"reason": "ok"}']))
DISPUTE_OPERATIONS = ["/v1/tenants/{t}/resolutions/{r}/dispute", "/v1/tenants/{t}/resolutions/{r}/dispute/accept",
                      "/v1/tenants/{t}/resolutions/{r}/dispute/reject", "/v1/tenants/{t}/resolutions/{r}/dispute/{r}"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(operation=st.sampled_from(DISPUTE_OPERATIONS), tenant_id=ODD, resolution_id=ODD, body=BODIES,
       as_admin=st.booleans(), own_tenant=st.booleans(), status=st.one_of(st.none(), ODD))
def test_no_dispute_request_reaches_a_5xx(served, operation, tenant_id, resolution_id, body, as_admin, own_tenant,
                                         status):
    server, tenant, admin = served
    path = operation.format(t=quote("acme" if own_tenant else tenant_id, safe=""), r=quote(resolution_id, safe=""))
    headers = {"Authorization": f"Bearer {admin if as_admin else tenant.api_key}",
               "Content-Type": "application/json"}
    response = httpx.post(server.url + path, content=body, headers=headers, timeout=30)
    assert response.status_code < 500, (path, body, response.status_code, response.text[:300])
    listing = httpx.get(server.url + ("/v1/disputes" if as_admin else "/v1/tenants/acme/disputes"),
                        params={"status": status} if status is not None else None, headers=headers, timeout=30)
    assert listing.status_code in (200, 422), (status, listing.status_code, listing.text[:300])
