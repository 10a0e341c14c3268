"""The README's settings table, made from the settings classes themselves (`python -m
clonedesk.core.settings_doc` prints it; a test keeps the README in step)."""

from __future__ import annotations

import importlib

from pydantic_settings import BaseSettings

# Every settings class of the project: the shared one, then each service's own.
SETTINGS_CLASSES = (
    "clonedesk.core.settings:Settings",
    "clonedesk.trainer.settings:TrainerSettings",
    "clonedesk.resolver.settings:ResolverSettings",
    "clonedesk.metering.settings:MeteringSettings",
    "clonedesk.ingest.settings:IngestSettings",
)


def _load(path: str) -> type[BaseSettings]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def settings_rows() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting, each variable once."""
    rows: dict[str, tuple[str, str, str]] = {}
    for path in SETTINGS_CLASSES:
        cls = _load(path)
        prefix = cls.model_config.get("env_prefix", "")
        for name, field in cls.model_fields.items():
            env = f"{prefix}{name}".upper()
            if env in rows:
                continue
            default = field.get_default(call_default_factory=True)
            shown = "unset" if default is None else f"`{default}`"
            rows[env] = (env, shown, (field.description or "").replace("|", "\\|"))
    return list(rows.values())


def markdown_table() -> str:
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{env}` | {default} | {description} |" for env, default, description in settings_rows()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
