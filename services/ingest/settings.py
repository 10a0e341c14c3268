"""Ingest's own settings (`CLONEDESK_GATEWAY_*`), beside the shared ones."""

from __future__ import annotations

from pydantic import Field

from clonedesk.core.settings import Settings
from clonedesk.core.signatures import DEFAULT_TOLERANCE_S


class IngestSettings(Settings):
    gateway_max_body_bytes: int = Field(default=1024 * 1024, ge=1, description="Larger webhook bodies get 413.")
    gateway_signature_tolerance_s: float = Field(
        default=DEFAULT_TOLERANCE_S, ge=1,
        description="Seconds a Zendesk signature timestamp may differ from now (replay protection).")

    @classmethod
    def from_settings(cls, settings: Settings) -> "IngestSettings":
        """These settings plus ingest's own (read from the environment)."""
        return cls(**{k: v for k, v in settings.model_dump().items() if v is not None})
