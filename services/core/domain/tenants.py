"""A tenant: its id rule, billing terms, helpdesk access and back office (pure; the store that keeps them
is core/tenants.py)."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import asdict, dataclass, field

TENANT_ID_PATTERN = re.compile(r"^[a-z0-9-]{1,40}$")


class InvalidTenantId(ValueError):
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
    # (core.domain.confidence); a number is the operator's override (`tenant set --escalation-threshold`).
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
        data = dict(data)  # nothing of `data` is shared with the tenant: its one list is copied too
        data["plan"] = Plan(**data.get("plan", {}))
        data["helpdesk"] = HelpdeskAccess(**data.get("helpdesk", {}))
        data["actions_allow"] = list(data.get("actions_allow", ()))
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
