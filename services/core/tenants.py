"""Tenants: the file store under `<data>/tenants/` (one 0600 JSON file per tenant).

One file per tenant, re-read on lookup, so a tenant added while the stack runs is served at once by
every service without a restart or a shared server.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from clonedesk.core.domain.tenants import (TENANT_ID_PATTERN, HelpdeskAccess, InvalidTenantId, Plan, Tenant,
                                           new_actions_secret, validate_tenant_id)
from clonedesk.core.files import write_atomically

# The tenant itself is pure (core/domain/tenants.py); its names are here too for the store's callers.
__all__ = ["TENANT_ID_PATTERN", "HelpdeskAccess", "InvalidTenantId", "Plan", "Tenant", "TenantExists", "TenantStore",
           "UnknownTenant", "admin_api_key", "new_actions_secret", "validate_tenant_id"]

class TenantExists(ValueError):
    pass


class UnknownTenant(LookupError):
    pass


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
        # tenant id → (its file's path, the file's inode, mtime and size, what it holds parsed): the gateway
        # and the stream worker look a tenant up per request, and a stat is cheaper than an open, a read and
        # a parse. Every write replaces the file (a new inode), so a changed tenant is never served from here.
        self._parsed: dict[str, tuple[str, tuple[int, int, int], dict]] = {}

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
        cached = self._parsed.get(tenant_id)
        if cached is None:
            try:
                path = str(self._file(tenant_id))
            except InvalidTenantId:
                raise UnknownTenant(f"unknown tenant {tenant_id!r}") from None
        else:
            path = cached[0]
        try:
            stat = os.stat(path)
            version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if cached is None or cached[1] != version:
                with open(path, encoding="utf-8") as handle:
                    cached = (path, version, json.load(handle))
                self._parsed[tenant_id] = cached
        except FileNotFoundError:
            self._parsed.pop(tenant_id, None)
            raise UnknownTenant(f"unknown tenant {tenant_id!r}") from None
        return Tenant.from_dict(cached[2])  # a Tenant of its own each time: a caller may change what it gets

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
