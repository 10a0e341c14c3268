"""`clonedesk up`: start the embedded stack as supervised child processes, restart what dies (with
backoff), stop everything cleanly on Ctrl-C / SIGTERM."""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from clonedesk.core.broker_hold import hold, hold_marker, release
from clonedesk.core.kafka import ensure_topics, wait_for_broker, warm_up_partitions
from clonedesk.core.settings import Settings
from clonedesk.core.domain.topics import all_topic_specs
from clonedesk.core.components import Component, discover_components
from clonedesk.stack.infra import infrastructure
from clonedesk.stack.state import port_accepts, write_state

log = logging.getLogger("clonedesk.supervisor")

MAX_BACKOFF_S = 30.0
# A child that ran this long before dying is treated as healthy again: its backoff restarts at 1 s.
STABLE_AFTER_S = 60.0
STOP_GRACE_S = 15.0


class StackError(RuntimeError):
    """A problem starting the stack, worded for the operator (one line)."""


class PortInUse(StackError):
    pass


class AlreadyRunning(StackError):
    pass


def _die_with_parent() -> None:
    # Children get SIGTERM if the supervisor itself dies (even by SIGKILL): no orphaned brokers.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _terminate(children: list["Child"]) -> None:
    """SIGTERM them all at once, then wait up to STOP_GRACE_S in all before SIGKILL."""
    for child in children:
        child.process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


@dataclass
class Child:
    component: Component
    log_path: Path
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures_in_a_row: int = 0
    next_start_at: float | None = None
    # Stopped on purpose while the broker restarts; started again once the broker is ready.
    held: bool = False
    log_handle: TextIO | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.process.poll() is None else None


class Supervisor:
    def __init__(self, settings: Settings, ephemeral: bool = False, components: list[Component] | None = None,
                 say: Callable[[str], None] = print, only: set[str] | None = None):
        self.settings = settings
        self.ephemeral = ephemeral
        self.say = say
        infra, self.warning = infrastructure(settings, ephemeral)
        services = discover_components(settings) if components is None else components
        chosen = [c for c in infra + services if only is None or c.name in only]
        if only and (unknown := only - {c.name for c in infra + services}):
            raise StackError(f"no such component: {', '.join(sorted(unknown))}")
        self.children = [Child(c, settings.path("logs", f"{c.name}.log")) for c in chosen]
        self.stopping = False
        self.ready = False
        self._lock_handle: TextIO | None = None
        self._env = {**os.environ, **settings.child_env(), "CLONEDESK_KAFKA_BOOTSTRAP": settings.bootstrap}
        self.hold_marker = hold_marker(settings.resolved_data_dir)

    # -- lifecycle ---------------------------------------------------------------------------------

    def preflight(self) -> None:
        """Refuse to start over another stack on the same data dir, or on a port someone holds."""
        lock_path = self.settings.path("run", "supervisor.lock")
        self._lock_handle = open(lock_path, "a+")  # noqa: SIM115 - held for the supervisor's life
        try:
            fcntl.flock(self._lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(
                f"a stack is already running on data dir {self.settings.resolved_data_dir}"
                " (`clonedesk status` shows it, `clonedesk down` stops it)") from None
        for child in self.children:
            port = child.component.port
            if port and port_accepts(port):
                hint = f" (set {child.component.port_env} to move it)" if child.component.port_env else ""
                raise PortInUse(f"port {port} for {child.component.name} is already in use{hint}")

    def start(self) -> None:
        self.preflight()
        release(self.hold_marker)  # a supervisor that died during a hold left it behind
        if self.warning:
            self.say(self.warning)
        self._write_state()
        services_from = 0
        for index, child in enumerate(self.children):
            if child.component.order >= 100:
                services_from = index
                break
            self._spawn(child)
            self._await_ready(child, fatal=True)
            if child.component.name == "broker":
                self._prepare_broker()
        else:
            services_from = len(self.children)
        if not self.settings.embedded_broker:
            asyncio.run(wait_for_broker(self.settings.bootstrap, timeout=8))
            self._create_topics()
        for child in self.children[services_from:]:
            self._spawn(child)
        for child in self.children[services_from:]:
            self._await_ready(child, fatal=False)
        self.ready = True
        self._write_state()
        self.say(f"stack up: {len(self.children)} components, data dir {self.settings.resolved_data_dir}")

    def run(self) -> None:
        """Start, then supervise until SIGINT/SIGTERM; always stops the children on the way out."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while not self.stopping:
                self.supervise_once()
                time.sleep(0.5)
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def supervise_once(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.held:
                continue
            process = child.process
            if process is not None and process.poll() is not None and child.next_start_at is None:
                ran_for = now - child.started_at
                child.failures_in_a_row = 1 if ran_for > STABLE_AFTER_S else child.failures_in_a_row + 1
                delay = min(MAX_BACKOFF_S, 2.0 ** (child.failures_in_a_row - 1))
                child.next_start_at = now + delay
                self.say(f"{child.component.name} exited with code {process.returncode} after {ran_for:.1f}s;"
                         f" restarting in {delay:.0f}s")
                log.warning("component exited", extra={"component": child.component.name,
                                                       "exit_code": process.returncode, "backoff_s": delay})
                if child.component.name == "broker":
                    self._hold_services()
            if child.next_start_at is not None and now >= child.next_start_at and not self.stopping:
                child.next_start_at = None
                child.restarts += 1
                self._spawn(child)
                if child.component.name == "broker":
                    if self._await_ready(child, fatal=False):
                        self._restart_held_services_after(child)
                    elif child.process.poll() is None:
                        child.process.kill()  # never answered: restart it again (services stay held)
                self.say(f"{child.component.name} restarted (restart #{child.restarts}, pid {child.pid})")
                log.warning("component restarted", extra={"component": child.component.name,
                                                          "restart": child.restarts})
                self._write_state()

    def stop(self) -> None:
        self.stopping = True
        running = [c for c in reversed(self.children) if c.process and c.process.poll() is None]
        # Services first, then the broker, then its store: nothing loses its broker mid-shutdown.
        for group in (
            [c for c in running if c.component.order >= 100],
            [c for c in running if c.component.order < 100],
        ):
            _terminate(group)
        for child in self.children:
            if child.log_handle:
                child.log_handle.close()
        self.ready = False
        self._write_state()
        if self._lock_handle:
            self._lock_handle.close()
            self._lock_handle = None

    # -- internals ---------------------------------------------------------------------------------

    def _on_signal(self, signum, _frame) -> None:
        if not self.stopping:
            self.say(f"received {signal.Signals(signum).name}; stopping the stack")
        self.stopping = True
        if not self.ready:
            raise KeyboardInterrupt  # interrupt a start that is still waiting on something

    def _spawn(self, child: Child) -> None:
        if child.log_handle is None:
            child.log_handle = open(child.log_path, "a", buffering=1)  # noqa: SIM115
        child.log_handle.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {child.component.name}\n")
        child.process = subprocess.Popen(
            child.component.argv,
            env={**self._env, **child.component.env},
            stdout=child.log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches only the supervisor, which stops children in order
            preexec_fn=_die_with_parent,
        )
        child.started_at = time.monotonic()
        self._write_state()

    def _await_ready(self, child: Child, fatal: bool) -> bool:
        component = child.component
        deadline = time.monotonic() + component.start_timeout
        while time.monotonic() < deadline and not self.stopping:
            if child.process.poll() is not None:
                break
            if (component.port is None or port_accepts(component.port)) and (
                component.ready is None or component.ready()
            ):
                return True
            time.sleep(0.2)
        tail = "".join(child.log_path.read_text(errors="replace").splitlines(True)[-5:]).strip()
        message = f"{component.name} did not come up (log: {child.log_path})" + (f": {tail}" if tail else "")
        if fatal:
            raise StackError(message)
        self.say("warning: " + message)
        return False

    def _hold_services(self) -> None:
        """The embedded broker died. Hold every service until it is back and prepared: a producer that
        reconnects the moment the port answers would append before the warm-up fetch (see
        core.kafka.warm_up_partitions) and overwrite acknowledged records on the restarted broker.
        Services that serve the outside (the gateway) keep running and answer 503 under the hold
        marker; the others are stopped."""
        hold(self.hold_marker, "the embedded broker is restarting")
        services = [c for c in self.children if c.component.order >= 100]
        stopped = [c for c in services if not c.component.serves_through_broker_restart]
        _terminate([c for c in stopped if c.process and c.process.poll() is None])
        for child in stopped:
            child.held, child.next_start_at = True, None
        if services:
            answering = len(services) - len(stopped)
            self.say(f"holding {len(services)} services until the broker is back"
                     + (f" ({answering} answering 503 meanwhile)" if answering else ""))
            log.warning("services held for a broker restart", extra={"services": len(services)})
        self._write_state()

    def _restart_held_services_after(self, broker: Child) -> None:
        try:
            self._prepare_broker()
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - not safe to write to yet
            self.say(f"warning: the restarted broker could not be prepared ({exc}); restarting it again")
            broker.process.kill()
            return
        held = [c for c in self.children if c.held]
        answering = [c for c in self.children if c.component.order >= 100 and not c.held
                     and c.component.serves_through_broker_restart]
        release(self.hold_marker)
        for child in held:
            child.held = False
            self._spawn(child)
        if held or answering:
            self.say(f"released {len(held) + len(answering)} services after the broker restart")
            log.info("services released", extra={"services": len(held) + len(answering)})

    def _create_topics(self) -> None:
        created = asyncio.run(ensure_topics(self.settings.bootstrap,
                                            all_topic_specs(self.settings.topic_partitions)))
        if created:
            log.info("topics created", extra={"topics": ",".join(created)})

    def _prepare_broker(self) -> None:
        """After every start of the embedded broker: topics in place (memory storage comes back empty),
        and every partition fetched once (see core.kafka.warm_up_partitions)."""
        self._create_topics()
        specs = all_topic_specs(self.settings.topic_partitions)
        asyncio.run(warm_up_partitions(self.settings.bootstrap, [s.name for s in specs]))

    def _write_state(self) -> None:
        write_state(self.settings, {
            "supervisor_pid": os.getpid(),
            "ready": self.ready,
            "ephemeral": self.ephemeral or self.warning is not None,
            "bootstrap": self.settings.bootstrap,
            "components": [
                {"name": c.component.name, "port": c.component.port, "pid": c.pid, "restarts": c.restarts}
                for c in self.children
            ],
        })
