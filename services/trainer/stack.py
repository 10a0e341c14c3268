"""The trainer in `clonedesk up`: one worker process, no port."""

from __future__ import annotations

from clonedesk.core.settings import Settings
from clonedesk.core.components import Component, clonedesk_command


def components(settings: Settings) -> list[Component]:
    return [Component(name="trainer", argv=clonedesk_command("trainer"), order=120)]
