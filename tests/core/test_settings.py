from pathlib import Path

import pytest
from pydantic import ValidationError

from clonedesk.core.settings import Settings


def test_defaults_are_the_embedded_stack(monkeypatch, tmp_path):
    for key in list(__import__("os").environ):
        if key.startswith("CLONEDESK_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.embedded_broker
    assert settings.bootstrap == "127.0.0.1:9092"
    assert settings.engine == "hf"
    assert settings.resolved_data_dir == tmp_path / ".clonedesk"
    assert settings.clickhouse == f"chdb://{tmp_path / '.clonedesk' / 'clickhouse'}"


def test_every_documented_setting_is_read_from_its_env_var(monkeypatch, tmp_path):
    env = {
        "CLONEDESK_DATA_DIR": str(tmp_path / "d"),
        "CLONEDESK_KAFKA_BOOTSTRAP": "kafka-1:9092,kafka-2:9092",
        "CLONEDESK_BROKER_PORT": "19092",
        "CLONEDESK_CLICKHOUSE_DSN": "http://clickhouse:8123",
        "CLONEDESK_BASE_MODEL": "Qwen/Qwen2.5-0.5B-Instruct",
        "CLONEDESK_ENGINE": "vllm",
        "CLONEDESK_GATEWAY_PORT": "18080",
        "CLONEDESK_RESOLVER_PORT": "15051",
        "CLONEDESK_API_PORT": "18081",
        "CLONEDESK_OTLP_ENDPOINT": "http://collector:4318",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.resolved_data_dir == tmp_path / "d"
    assert not settings.embedded_broker and settings.bootstrap == "kafka-1:9092,kafka-2:9092"
    assert settings.broker_port == 19092
    assert settings.clickhouse == "http://clickhouse:8123"
    assert settings.base_model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert settings.engine == "vllm"
    assert (settings.gateway_port, settings.resolver_port, settings.api_port) == (18080, 15051, 18081)
    assert settings.otlp_endpoint == "http://collector:4318"
    # A child process handed child_env() reads exactly the same settings.
    for key in env:
        monkeypatch.delenv(key)
    for key, value in settings.child_env().items():
        monkeypatch.setenv(key, value)
    assert Settings() == settings


@pytest.mark.parametrize("key,value", [("CLONEDESK_ENGINE", "tensorrt"), ("CLONEDESK_BROKER_PORT", "nine")])
def test_bad_values_are_refused(monkeypatch, key, value):
    monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError):
        Settings()


def test_path_creates_parents_under_the_data_dir(tmp_path):
    settings = Settings(data_dir=tmp_path / "x")
    target = settings.path("logs", "broker.log")
    assert target == tmp_path / "x" / "logs" / "broker.log" and target.parent.is_dir()
    assert isinstance(target, Path)
