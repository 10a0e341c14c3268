"""schemathesis against the running gateway (a child process on the package's broker): the cases it
generates from the gateway's own OpenAPI document (/openapi.json: tenant ids in the path, JSON bodies),
each signed as its vendor would sign it with the tenant's real secret (the hook below), half of them
for the real tenant. Answers are 2xx/4xx with a reason, never a 5xx."""

from __future__ import annotations

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.harness import sign_intercom, sign_zendesk

pytestmark = pytest.mark.integration

_operations: dict = {}


def gateway_operations(url: str):
    if url not in _operations:
        schema = schemathesis.openapi.from_url(url + "/openapi.json")
        _operations[url] = [result.ok() for result in schema.get_all_operations()]
    return _operations[url]


def signed(case, tenant) -> tuple[bytes, dict]:
    """The hook: the generated body's bytes and the vendor's signature headers over them."""
    body = json.dumps(case.body).encode() if isinstance(case.body, (dict, list)) else b""
    if "zendesk" in case.path:
        return body, sign_zendesk(tenant.zendesk_secret, body)
    if "intercom" in case.path:
        return body, sign_intercom(tenant.intercom_secret, body)
    return body, {}


def test_the_document_declares_both_webhooks_with_a_body(stack):
    operations = {op.path: op for op in gateway_operations(stack.url)}
    for path in ("/webhooks/zendesk/{tenant_id}", "/webhooks/intercom/{tenant_id}"):
        assert operations[path].definition.raw["requestBody"]["content"]["application/json"]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), own_tenant=st.booleans())
def test_no_signed_generated_case_reaches_a_5xx(stack, data, own_tenant):
    operation = data.draw(st.sampled_from(gateway_operations(stack.url)), label="operation")
    case = data.draw(operation.as_strategy(), label="case")
    tenant = stack.live
    if own_tenant and case.path_parameters and "tenant_id" in case.path_parameters:
        case.path_parameters["tenant_id"] = tenant.id
    body, headers = signed(case, tenant)
    response = httpx.request(case.method, stack.url + case.formatted_path, params=case.query, content=body,
                             headers=headers, timeout=30)
    assert response.status_code < 500, (case.method, case.formatted_path, body[:200], response.status_code,
                                        response.text[:300])
    if own_tenant and case.method == "POST":
        assert response.status_code != 401, ("a validly signed body was refused", body[:200], response.text[:300])
