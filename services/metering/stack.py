"""Metering's place in `clonedesk up`: the sink (`metering`, no port) and the analytics API (`api`).

With chDB the sink process owns the data path and `api` reads through it (see entrypoints/service.py),
so `api` starts after `metering`."""

from __future__ import annotations

from clonedesk.core.settings import Settings
from clonedesk.core.components import Component, clonedesk_command


def components(settings: Settings) -> list[Component]:
    return [
        Component(name="metering", argv=clonedesk_command("metering"), order=150),
        Component(name="api", argv=clonedesk_command("api"), port=settings.api_port,
                  port_env="CLONEDESK_API_PORT", order=160,
                  # It writes nothing to the broker: it stays up through a broker restart, and answers 503
                  # with Retry-After while the metering process behind it is held or restarting.
                  serves_through_broker_restart=True),
    ]
