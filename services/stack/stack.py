"""The stack's own part of `clonedesk up`: the helpdesk simulator, the stand-in for Zendesk and Intercom
(their reply APIs, and each tenant's back office) that replies are posted to."""

from __future__ import annotations

from clonedesk.core.components import Component, clonedesk_command
from clonedesk.core.settings import Settings


def components(settings: Settings) -> list[Component]:
    return [Component("helpdesk-sim", clonedesk_command("helpdesk-sim"), port=settings.helpdesk_sim_port,
                      port_env="CLONEDESK_HELPDESK_SIM_PORT", order=110)]
