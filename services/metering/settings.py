"""Metering's own settings, beside the shared ones (same `CLONEDESK_` prefix)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from pydantic import Field

from clonedesk.core.settings import Settings

# A unix socket path must fit in 108 bytes; keep a margin.
MAX_SOCKET_PATH = 100


class MeteringSettings(Settings):
    clickhouse_database: str = Field(default="clonedesk",
                                     description="ClickHouse database of metering's tables.")
    metering_batch_size: int = Field(
        default=100_000, ge=1,
        description="Records per ClickHouse write at most: polls read while a write runs go in the next one.")
    metering_batch_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1,
        description="Bytes of records per ClickHouse write at most (with metering_batch_size, what ends a batch).")
    admin_api_key: str | None = Field(
        default=None,
        description="The analytics API's admin key (reads every tenant); unset = `<data_dir>/admin_key`,"
                    " created on first use where the data dir is writable, else no admin access.",
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> "MeteringSettings":
        """These settings plus metering's own (read from the environment)."""
        return cls(**{k: v for k, v in settings.model_dump().items() if v is not None})

    @property
    def embedded_clickhouse(self) -> bool:
        return self.clickhouse.startswith("chdb:")

    @property
    def metering_socket(self) -> Path:
        """Where the metering process serves the API to the `api` process when chDB is in use."""
        path = self.resolved_data_dir / "metering" / "api.sock"
        if len(str(path)) > MAX_SOCKET_PATH:
            digest = hashlib.sha1(str(self.resolved_data_dir).encode()).hexdigest()[:12]
            path = Path(tempfile.gettempdir()) / f"clonedesk-metering-{digest}.sock"
        return path
