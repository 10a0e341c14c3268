"""`clonedesk demo`: the product end to end on the embedded stack, on real SGD data.

The steps live in the `clonedesk.demo` package (clonedesk/demo/run.py); this is the entry point the
`demo` command calls. A step that fails or times out ends the run with one line saying which and where
to look; a stack it started is left running for a look (`clonedesk status`, `clonedesk down`).
"""

from __future__ import annotations

import click

from clonedesk.core.settings import Settings


def run_demo(settings: Settings, quick: bool = False, ephemeral: bool = False) -> None:
    from clonedesk.demo.adapters.helpdesk import DemoStepFailed
    from clonedesk.demo.domain.split import NotEnoughDialogues
    from clonedesk.demo.run import run

    try:
        run(settings, quick=quick, ephemeral=ephemeral)
    except (DemoStepFailed, NotEnoughDialogues) as exc:
        raise click.ClickException(f"demo stopped: {exc}. A stack it started is left running for a look"
                                   " (`clonedesk status`; `clonedesk down` stops it)") from None
