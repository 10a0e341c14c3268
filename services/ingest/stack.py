"""Ingest's processes under `clonedesk up`: the webhook gateway and the conversation processor."""

from __future__ import annotations

from clonedesk.core.settings import Settings
from clonedesk.core.components import Component, clonedesk_command


def components(settings: Settings) -> list[Component]:
    return [
        Component(name="gateway", argv=clonedesk_command("ingest"), port=settings.gateway_port,
                  port_env="CLONEDESK_GATEWAY_PORT", order=110, serves_through_broker_restart=True),
        Component(name="streams", argv=clonedesk_command("streams"), order=120),
    ]
