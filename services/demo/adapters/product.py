"""The product's public commands, as the demo runs them: each a `clonedesk …` process with this run's
settings, the way an operator would type it (the demo reaches no service's internals)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from clonedesk.core.settings import Settings
from clonedesk.demo.adapters.helpdesk import DemoStepFailed


class ProductCommands:
    def __init__(self, settings: Settings):
        self.settings = settings

    def _run(self, *args: str, timeout: float = 1800.0) -> str:
        """Run `clonedesk *args`; its stdout, or DemoStepFailed with its last words on a failure."""
        command = [sys.executable, "-m", "clonedesk", *args]
        result = subprocess.run(command, env={**os.environ, **self.settings.child_env()}, capture_output=True,
                                text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            last = lines[-1].removeprefix("Error: ") if lines else f"exit code {result.returncode}"
            raise DemoStepFailed(f"`clonedesk {' '.join(args)}` failed: {last}")
        return result.stdout

    def _json(self, *args: str) -> dict:
        output = self._run(*args).strip().splitlines()
        try:
            return json.loads(output[-1])
        except (IndexError, ValueError):
            raise DemoStepFailed(f"`clonedesk {' '.join(args)}` printed no JSON report") from None

    def up(self, ephemeral: bool) -> str:
        """`clonedesk up --detach`: returns once every component is up; the status lines it printed."""
        return self._run("up", "--detach", *(["--ephemeral"] if ephemeral else []), timeout=240.0)

    def down(self) -> bool:
        """`clonedesk down`; True if a stack was running on this data dir."""
        return self._run("down", timeout=90.0).strip() == "stack stopped"

    def import_history(self, kind: str, path, tenant_id: str) -> dict:
        """`clonedesk import KIND FILE --tenant T --json`: records, events written, rejected, problems."""
        return self._json("import", kind, str(path), "--tenant", tenant_id, "--json")

    def preview(self, tenant_id: str, score_base: bool) -> dict:
        """`clonedesk preview --tenant T --json`: the current adapter's accuracy preview report."""
        return self._json("preview", "--tenant", tenant_id, "--json", *([] if score_base else ["--no-base"]))
