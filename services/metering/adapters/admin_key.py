"""Where the analytics API finds its admin key: the `CLONEDESK_ADMIN_API_KEY` setting, else the key file
in the data dir (`<data>/admin_key`, created on first use). In Kubernetes the api pod mounts the data dir
read-only: with no setting and no file there, admin access is off and tenant keys still work."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from clonedesk.core.tenants import admin_api_key

log = logging.getLogger(__name__)

AdminKeySource = Callable[[], str | None]


def admin_key_source(data_dir: Path, configured: str | None = None) -> AdminKeySource:
    """A function giving the admin key now, or None when there is none to be had.

    A configured key is the only one: rotating it is then a restart, and a stale file cannot outlive it.
    Without one the file is read on every call (an operator may create it later), and a data dir that can
    be neither read nor written disables admin access instead of failing each request.
    """
    if configured:
        return lambda: configured
    warned = False

    def from_file() -> str | None:
        nonlocal warned
        try:
            key = admin_api_key(data_dir)
        except OSError as exc:
            if not warned:
                warned = True
                log.warning("admin access disabled: no CLONEDESK_ADMIN_API_KEY and no usable admin key file",
                            extra={"path": str(Path(data_dir) / "admin_key"), "error": str(exc)})
            return None
        return key or None  # an empty file is no key

    return from_file
