"""`clonedesk demo`: the product end to end on the embedded stack, on real SGD data (found by the
`clonedesk` command, like every package's commands).

The steps live in run.py. A step that fails or times out ends the run with one line saying which and
where to look; a stack it started is left running for a look (`clonedesk status`, `clonedesk down`).
"""

from __future__ import annotations

import sys

import click


def register(main: click.Group) -> None:
    main.add_command(demo)


@click.command()
@click.option("--quick", is_flag=True, help="A shortened run (what the end-to-end test uses).")
@click.option("--ephemeral", is_flag=True, help="Run the stack on memory storage.")
@click.pass_context
def demo(ctx: click.Context, quick: bool, ephemeral: bool) -> None:
    """Run the product end to end on the embedded stack."""
    from clonedesk.core.command_line import settings_from
    from clonedesk.demo.adapters.helpdesk import DemoStepFailed
    from clonedesk.demo.domain.split import NotEnoughDialogues
    from clonedesk.demo.run import run

    try:
        run(settings_from(ctx), quick=quick, ephemeral=ephemeral)
    except (DemoStepFailed, NotEnoughDialogues) as exc:
        raise click.ClickException(f"demo stopped: {exc}. A stack it started is left running for a look"
                                   " (`clonedesk status`; `clonedesk down` stops it)") from None
    sys.stdout.flush()
