"""schemathesis, the OpenAPI fuzzer, against the analytics API on a real uvicorn server (store on chDB):
every operation its schema declares, with the cases schemathesis generates from that schema (path ids
with control and non-ASCII characters, odd query values, bodies), by a tenant key and by the admin key.
No answer may be a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clonedesk.metering.entrypoints.api import create_app
from tests.metering.test_api_fuzz import served  # noqa: F401 (the fixture: a served API with a tenant)

pytestmark = pytest.mark.integration


def _operations(app):
    schema = schemathesis.openapi.from_dict(app.openapi())
    return [result.ok() for result in schema.get_all_operations()]


def test_the_schema_declares_the_billing_operations(tmp_path, clickhouse_client):
    from clonedesk.metering.adapters.store import MeteringStore

    paths = {op.path for op in _operations(create_app(MeteringStore(clickhouse_client, "t_schema"), tmp_path))}
    assert {"/v1/tenants/{tenant_id}/invoice", "/v1/tenants/{tenant_id}/usage",
            "/v1/tenants/{tenant_id}/resolutions", "/v1/tenants/{tenant_id}/resolutions/{resolution_id}/dispute",
            } <= paths, sorted(paths)


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), as_admin=st.booleans(), own_tenant=st.booleans())
def test_no_generated_case_reaches_a_5xx(served, data, as_admin, own_tenant):  # noqa: F811
    server, tenant, admin = served
    operations = served_operations(server)
    operation = data.draw(st.sampled_from(operations), label="operation")
    case = data.draw(operation.as_strategy(), label="case")
    if own_tenant and case.path_parameters and "tenant_id" in case.path_parameters:
        case.path_parameters["tenant_id"] = tenant.id  # past the tenant check, into the query's own values
    response = case.call(base_url=server.url, headers={"Authorization": f"Bearer {admin if as_admin else tenant.api_key}"},
                         timeout=30)
    assert response.status_code < 500, (case.method, case.formatted_path, case.path_parameters, case.query,
                                        response.status_code, response.text[:300])


_loaded: dict = {}


def served_operations(server):
    """The operations of the schema the running server publishes (GET /openapi.json), loaded once."""
    if server.url not in _loaded:
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        _loaded[server.url] = [result.ok() for result in schema.get_all_operations()]
    return _loaded[server.url]

