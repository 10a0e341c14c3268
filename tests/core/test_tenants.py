import stat

import pytest

from clonedesk.core.tenants import (
    InvalidTenantId, TenantExists, TenantStore, UnknownTenant, admin_api_key, validate_tenant_id,
)


@pytest.mark.parametrize("good", ["a", "acme", "acme-2", "0", "x" * 40, "a-b-c-9"])
def test_valid_ids(good):
    assert validate_tenant_id(good) == good


@pytest.mark.parametrize("bad", ["", "Acme", "acme_corp", "x" * 41, "acme corp", "acme/..", "ünï", "acme\n", None])
def test_invalid_ids_are_refused_with_the_rule_in_the_message(bad):
    with pytest.raises(InvalidTenantId, match="lowercase letters, digits and '-'"):
        validate_tenant_id(bad)


def test_add_stores_secrets_privately_and_refuses_duplicates(tmp_path):
    store = TenantStore(tmp_path)
    tenant = store.add("acme")
    path = tmp_path / "tenants" / "acme.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len({tenant.zendesk_secret, tenant.intercom_secret, tenant.api_key}) == 3
    assert store.get("acme").api_key == tenant.api_key
    with pytest.raises(TenantExists):
        store.add("acme")
    assert store.get("acme").zendesk_secret == tenant.zendesk_secret  # the refused add changed nothing


def test_lookups(tmp_path):
    store = TenantStore(tmp_path)
    first, second = store.add("one"), store.add("two")
    assert [t.id for t in store.list()] == ["one", "two"]
    assert store.by_api_key(second.api_key).id == "two"
    assert store.by_api_key("nope") is None
    with pytest.raises(UnknownTenant):
        store.get("three")
    with pytest.raises(UnknownTenant):
        store.get("../etc/passwd")  # an invalid id is simply unknown, never a path
    assert store.find("three") is None and store.find("one").id == first.id


def test_save_updates_atomically_and_keeps_mode(tmp_path):
    store = TenantStore(tmp_path)
    tenant = store.add("acme")
    tenant.live = True
    store.save(tenant)
    assert store.get("acme").live is True
    assert stat.S_IMODE((tmp_path / "tenants" / "acme.json").stat().st_mode) == 0o600
    assert list((tmp_path / "tenants").iterdir()) == [tmp_path / "tenants" / "acme.json"]


def test_views_without_secrets_hide_them(tmp_path):
    tenant = TenantStore(tmp_path).add("acme")
    view = tenant.to_dict(secrets=False)
    text = str(view)
    for secret in (tenant.zendesk_secret, tenant.intercom_secret, tenant.api_key):
        assert secret not in text


def test_admin_key_is_stable_and_private(tmp_path):
    key = admin_api_key(tmp_path)
    assert key == admin_api_key(tmp_path) and key.startswith("cdk_admin_")
    assert stat.S_IMODE((tmp_path / "admin_key").stat().st_mode) == 0o600


def test_a_lookup_sees_every_change_at_once_and_hands_out_its_own_copy(tmp_path):
    reader, writer = TenantStore(tmp_path), TenantStore(tmp_path)  # as the gateway and the CLI
    writer.add("acme")
    first = reader.get("acme")
    assert not first.live
    first.live = True  # changed by a caller, not saved: no other lookup may see it
    first.plan.free_units = 7
    first.helpdesk.zendesk_token = "changed"
    first.actions_allow.append("refund_order")
    again = reader.get("acme")
    assert not again.live and again.plan.free_units == 100 and again.helpdesk.zendesk_token == ""
    assert again.actions_allow == []
    changed = writer.get("acme")
    changed.live = True
    writer.save(changed)
    assert reader.get("acme").live  # the file was replaced: read again
    (tmp_path / "tenants" / "acme.json").unlink()
    with pytest.raises(UnknownTenant):
        reader.get("acme")
