"""What every `clonedesk` subcommand shares: operator errors as one line, and the settings of the run.

The root command (clonedesk/cli.py) and each package's `cli.py` (registered through `register(group)`)
use these, so no package's CLI needs the root command's module.
"""

from __future__ import annotations

import click
from pydantic import ValidationError

from clonedesk.core.kafka import BrokerUnavailable
from clonedesk.core.progress import quiet_library_bars
from clonedesk.core.settings import Settings
from clonedesk.core.tenants import InvalidTenantId, TenantExists, UnknownTenant


class OperatorError(click.ClickException):
    """An error worded for the operator: printed as one line, exit code 1, no traceback."""


# Errors that are the operator's to fix: each becomes one clear line instead of a traceback.
_ONE_LINE_ERRORS: tuple[type[BaseException], ...] = (
    InvalidTenantId, TenantExists, UnknownTenant, BrokerUnavailable, FileNotFoundError, PermissionError,
)


def one_line_errors(*types: type[BaseException]) -> None:
    """Let a package declare more exception types that should print as one line."""
    global _ONE_LINE_ERRORS
    _ONE_LINE_ERRORS = tuple(dict.fromkeys(_ONE_LINE_ERRORS + types))


class CloneDeskGroup(click.Group):
    def invoke(self, ctx: click.Context):
        quiet_library_bars()  # in a log, library bars are only carriage-return frames
        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise OperatorError(f"bad setting CLONEDESK_{where.upper()}: {first.get('msg')}") from None
        except _ONE_LINE_ERRORS as exc:
            raise OperatorError(str(exc)) from None


def settings_from(ctx: click.Context) -> Settings:
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        obj["settings"] = Settings()
    return obj["settings"]
