"""Tenants: id rules (pure) and the file store under `<data>/tenants/` (one 0600 JSON file per tenant).

One file per tenant, re-read on lookup, so a tenant added while the stack runs is served at once by
every service without a restart or a shared server.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from clonedesk.core.files import write_atomically

TENANT_ID_PATTERN = re.compile(r"^[a-z0-9-]{1,40}$")


class InvalidTenantId(ValueError):
    pass


class TenantExists(ValueError):
    pass


class UnknownTenant(LookupError):
    pass


def validate_tenant_id(tenant_id: str) -> str:
    """Return `tenant_id` if it is 1-40 characters of lowercase letters, digits and `-`; else raise."""
    if not isinstance(tenant_id, str) or not TENANT_ID_PATTERN.fullmatch(tenant_id):
        raise InvalidTenantId(
            f"invalid tenant id {tenant_id!r}: use 1-40 characters of lowercase letters, digits and '-'"
        )
    return tenant_id


@dataclass
class Plan:
    """Billing terms; amounts are decimal strings so nothing ever passes through a float."""

    unit_price_usd: str = "0.99"
    free_units: int = 100
    bill_assumed: bool = True
    assumed_window_hours: int = 24
    reopen_window_days: int = 7


@dataclass
class HelpdeskAccess:
    """Where the tenant's replies are posted (Zendesk / Intercom APIs), and with which credentials."""

    zendesk_base_url: str = ""
    zendesk_email: str = ""
    zendesk_token: str = ""
    intercom_base_url: str = ""
    intercom_token: str = ""


@dataclass
class Tenant:
    id: str
    zendesk_secret: str
    intercom_secret: str
    api_key: str
    created_at: float = field(default_factory=time.time)
    live: bool = False
    # None: chosen from the current adapter's holdout to reach `target_accuracy` on answered turns
    # (core.confidence); a number is the operator's override (`tenant set --escalation-threshold`).
    escalation_threshold: float | None = None
    target_accuracy: float = 0.9
    plan: Plan = field(default_factory=Plan)
    helpdesk: HelpdeskAccess = field(default_factory=HelpdeskAccess)
    # The tenant's back office (resolver.domain.actions): where ACTION answers are carried out, the key
    # their requests are signed with, the calls allowed (empty: the ones its history made) and how long
    # one request may take.
    actions_url: str = ""
    actions_secret: str = ""
    actions_allow: list[str] = field(default_factory=list)
    actions_timeout_s: float = 5.0

    SECRET_FIELDS = ("zendesk_secret", "intercom_secret", "api_key", "actions_secret")

    @classmethod
    def new(cls, tenant_id: str) -> "Tenant":
        return cls(
            id=validate_tenant_id(tenant_id),
            zendesk_secret=secrets.token_urlsafe(32),
            intercom_secret=secrets.token_urlsafe(32),
            api_key="cdk_" + secrets.token_urlsafe(32),
            actions_secret=new_actions_secret(),
        )

    @classmethod
    def from_dict(cls, data: dict) -> "Tenant":
        data = dict(data)
        data["plan"] = Plan(**data.get("plan", {}))
        data["helpdesk"] = HelpdeskAccess(**data.get("helpdesk", {}))
        return cls(**data)

    def to_dict(self, secrets: bool = True) -> dict:
        data = asdict(self)
        if not secrets:
            for name in self.SECRET_FIELDS:
                data.pop(name)
            data["helpdesk"] = {k: v for k, v in data["helpdesk"].items() if not k.endswith("token")}
        return data


def new_actions_secret() -> str:
    return "cdk_act_" + secrets.token_urlsafe(32)


def _write_private(path: Path, payload: str, exclusive: bool) -> None:
    """Write a 0600 file atomically (temp file + rename); `exclusive` refuses an existing target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if exclusive:
        # O_EXCL makes two concurrent `tenant add` of one id fail cleanly instead of racing.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        return
    write_atomically(path, payload, mode=0o600)


class TenantStore:
    def __init__(self, data_dir: Path):
        self.root = Path(data_dir) / "tenants"
        # tenant id → (the file's inode, mtime and size, its text): the gateway and the stream worker look a
        # tenant up per request, and a stat is cheaper than an open and a read. Every write replaces the
        # file (a new inode), so a changed tenant is never served from here.
        self._texts: dict[str, tuple[tuple[int, int, int], str]] = {}

    def _file(self, tenant_id: str) -> Path:
        return self.root / f"{validate_tenant_id(tenant_id)}.json"

    def add(self, tenant_id: str) -> Tenant:
        tenant = Tenant.new(tenant_id)
        try:
            _write_private(self._file(tenant.id), json.dumps(tenant.to_dict(), indent=2), exclusive=True)
        except FileExistsError:
            raise TenantExists(f"tenant {tenant.id!r} already exists") from None
        return tenant

    def get(self, tenant_id: str) -> Tenant:
        try:
            path = self._file(tenant_id)
        except InvalidTenantId:
            raise UnknownTenant(f"unknown tenant {tenant_id!r}") from None
        try:
            stat = path.stat()
            version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            cached = self._texts.get(tenant_id)
            if cached is None or cached[0] != version:
                cached = (version, path.read_text())
                self._texts[tenant_id] = cached
        except FileNotFoundError:
            self._texts.pop(tenant_id, None)
            raise UnknownTenant(f"unknown tenant {tenant_id!r}") from None
        return Tenant.from_dict(json.loads(cached[1]))  # parsed each time: a caller may change what it gets

    def find(self, tenant_id: str) -> Tenant | None:
        try:
            return self.get(tenant_id)
        except UnknownTenant:
            return None

    def save(self, tenant: Tenant) -> None:
        self.get(tenant.id)  # only existing tenants are updated
        _write_private(self._file(tenant.id), json.dumps(tenant.to_dict(), indent=2), exclusive=False)

    def list(self) -> list[Tenant]:
        if not self.root.exists():
            return []
        return [Tenant.from_dict(json.loads(p.read_text())) for p in sorted(self.root.glob("*.json"))]

    def by_api_key(self, api_key: str) -> Tenant | None:
        for tenant in self.list():
            if secrets.compare_digest(tenant.api_key.encode(), api_key.encode()):
                return tenant
        return None


def admin_api_key(data_dir: Path) -> str:
    """The operator's key (reads every tenant), generated on first use into `<data>/admin_key` (0600)."""
    path = Path(data_dir) / "admin_key"
    if not path.exists():
        try:
            _write_private(path, "cdk_admin_" + secrets.token_urlsafe(32), exclusive=True)
        except FileExistsError:
            pass
    return path.read_text().strip()
