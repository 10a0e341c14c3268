"""Trainer commands: `trainer` (the worker), `preview --tenant T [--json]`, `base-model build --out DIR`."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import click


def register(main: click.Group) -> None:
    from clonedesk.cli import one_line_errors
    from clonedesk.trainer.entrypoints.preview import PreviewUnavailable

    one_line_errors(PreviewUnavailable)
    main.add_command(trainer)
    main.add_command(preview)
    main.add_command(base_model)


@click.command()
@click.option("--progress", is_flag=True, help="Show progress bars of training runs.")
@click.pass_context
def trainer(ctx: click.Context, progress: bool) -> None:
    """Consume training.samples, train each tenant's adapter, publish promoted versions."""
    from clonedesk.cli import settings_from
    from clonedesk.core.logs import configure_logging
    from clonedesk.trainer.entrypoints.worker import TrainerWorker

    settings = settings_from(ctx)
    configure_logging("trainer", settings.log_level)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await TrainerWorker(settings, progress_bars=progress).run(stop)

    asyncio.run(serve())


@click.command()
@click.option("--tenant", "tenant_id", required=True, help="The tenant to preview.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def preview(ctx: click.Context, tenant_id: str, as_json: bool) -> None:
    """Score the current adapter on the tenant's holdout beside the base model and retrieval."""
    from clonedesk.cli import settings_from
    from clonedesk.trainer.entrypoints.preview import make_preview, render_table

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # keep stdout/stderr to the report
    report = make_preview(settings_from(ctx), tenant_id)
    if as_json:
        click.echo(json.dumps(report))
        return
    from rich.console import Console

    Console().print(render_table(report))


@click.group("base-model")
def base_model() -> None:
    """The shared base model."""


@base_model.command("build")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder to build into.")
@click.option("--seed", default=0, show_default=True)
@click.option("--steps", default=None, type=int, help="Pre-training steps (default: the builder's).")
def build(out_dir: Path, seed: int, steps: int | None) -> None:
    """Build the small Llama-style base model and its tokenizer offline."""
    from clonedesk.trainer.adapters.base_model import DEFAULT_STEPS, build_base_model

    path = build_base_model(out_dir, seed=seed, steps=steps or DEFAULT_STEPS, progress=True)
    click.echo(f"base model built at {path}")
