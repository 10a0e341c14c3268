"""Stack commands: `up`, `down`, `status`, `topics`, and `helpdesk-sim` (the stand-in for Zendesk and
Intercom the embedded stack runs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import click

from clonedesk.core.settings import Settings
from clonedesk.core.components import clonedesk_command, discover_components
from clonedesk.stack.infra import MissingTool, infrastructure
from clonedesk.stack.state import pid_alive, read_state, stack_status
from clonedesk.stack.supervisor import StackError, Supervisor


def register(main: click.Group) -> None:
    from clonedesk.core.command_line import one_line_errors

    one_line_errors(StackError, MissingTool)
    for command in (up, down, status, topics, helpdesk_sim):
        main.add_command(command)


def _settings(ctx: click.Context) -> Settings:
    from clonedesk.core.command_line import settings_from

    return settings_from(ctx)


def start_detached(settings: Settings, ephemeral: bool, timeout: float = 180.0, only: str | None = None) -> dict:
    """Start `clonedesk up` in the background and wait until it reports ready; return its state."""
    state = read_state(settings)
    if state and pid_alive(state.get("supervisor_pid")) and state.get("ready"):
        return state
    output = settings.path("logs", "supervisor.out")
    with open(output, "a") as handle:
        process = subprocess.Popen(
            clonedesk_command("up", *(["--ephemeral"] if ephemeral else []), *(["--only", only] if only else [])),
            env={**os.environ, **settings.child_env()},
            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            lines = output.read_text(errors="replace").strip().splitlines()
            last = lines[-1].removeprefix("Error: ") if lines else f"`clonedesk up` exited with code {process.returncode}"
            raise StackError(last)
        state = read_state(settings)
        if state and state.get("supervisor_pid") == process.pid and state.get("ready"):
            return state
        time.sleep(0.3)
    process.terminate()
    raise StackError(f"the stack did not come up within {timeout:.0f}s (see {output})")


def stop_detached(settings: Settings, timeout: float = 60.0) -> bool:
    """Stop a running stack of this data dir; False if none was running."""
    state = read_state(settings)
    pid = state.get("supervisor_pid") if state else None
    if not pid_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        raise StackError(f"the supervisor (pid {pid}) did not stop within {timeout:.0f}s")
    return True


@click.command()
@click.option("--ephemeral", is_flag=True, help="Memory storage for the broker: quick, nothing survives a restart.")
@click.option("--detach", is_flag=True, help="Start in the background and return once the stack is up.")
@click.option("--only", help="Start only these components (comma-separated names, e.g. store,broker).")
@click.pass_context
def up(ctx: click.Context, ephemeral: bool, detach: bool, only: str | None) -> None:
    """Start the embedded stack: broker, its S3 store, and every service, supervised."""
    settings = _settings(ctx)
    if detach:
        start_detached(settings, ephemeral, only=only)
        _print_status(settings)
        return
    from clonedesk.core.logs import configure_logging

    configure_logging("supervisor", settings.log_level)
    names = {n.strip() for n in only.split(",") if n.strip()} if only else None
    supervisor = Supervisor(settings, ephemeral=ephemeral, say=lambda line: click.echo(line), only=names)
    try:
        supervisor.run()
    except KeyboardInterrupt:
        pass
    click.echo("stack stopped")


@click.command()
@click.pass_context
def down(ctx: click.Context) -> None:
    """Stop the stack of this data dir."""
    settings = _settings(ctx)
    click.echo("stack stopped" if stop_detached(settings) else "no stack running for this data dir")


def _known_components(settings: Settings) -> list[tuple[str, int | None]]:
    try:
        infra, _ = infrastructure(settings, ephemeral=False)
    except MissingTool:
        infra = []
    return [(c.name, c.port) for c in infra + discover_components(settings)]


def _print_status(settings: Settings, as_json: bool = False) -> list:
    statuses = stack_status(settings, _known_components(settings))
    if as_json:
        click.echo(json.dumps([vars(s) for s in statuses]))
    else:
        for entry in statuses:
            click.echo(entry.line())
    return statuses


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """One line per component: name, port, pid, up/down."""
    _print_status(_settings(ctx), as_json)


@click.command()
@click.pass_context
def topics(ctx: click.Context) -> None:
    """Create every CloneDesk topic (with its partition count) on the configured Kafka."""
    from clonedesk.core.service_runner import broker_with_topics

    settings = _settings(ctx)
    created = broker_with_topics(settings)
    click.echo(f"{len(created)} topics created on {settings.bootstrap}" + (f": {', '.join(created)}" if created else ""))


@click.command("helpdesk-sim")
@click.pass_context
def helpdesk_sim(ctx: click.Context) -> None:
    """A local helpdesk (Zendesk and Intercom reply APIs) that records replies; GET /replies lists them."""
    import asyncio
    import contextlib

    import uvicorn

    from clonedesk.core.service_runner import run_service
    from clonedesk.stack.helpdesk_sim import create_app

    class Server(uvicorn.Server):
        # Signals are ours (see core/service_runner.py); uvicorn's own would re-raise SIGTERM after a
        # graceful shutdown, turning a clean stop into exit code -15.
        def capture_signals(self):
            return contextlib.nullcontext()

    settings = _settings(ctx)
    app = create_app(settings.path("helpdesk-sim", "replies.jsonl"))
    server = Server(
        uvicorn.Config(app, host=settings.bind_host, port=settings.helpdesk_sim_port, log_level="warning")
    )

    async def serve(stop: asyncio.Event) -> None:
        task = asyncio.create_task(server.serve())
        await asyncio.wait({task, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        await task

    run_service("helpdesk-sim", settings, serve)
