"""Which infrastructure the stack starts, decided from settings and what is installed (no processes)."""

from clonedesk.core.settings import Settings
from clonedesk.stack import infra


def test_durable_storage_when_node_and_s3rver_are_there(tmp_path):
    parts, warning = infra.infrastructure(Settings(data_dir=tmp_path, store_port=19095), ephemeral=False)
    assert warning is None and [p.name for p in parts] == ["store", "broker"]
    broker = parts[1]
    assert "s3://tansu/" in broker.argv and broker.env["AWS_ENDPOINT"] == "http://127.0.0.1:19095"


def test_missing_node_is_a_warning_and_memory_storage(tmp_path, monkeypatch):
    monkeypatch.setattr(infra.shutil, "which", lambda name: None)
    parts, warning = infra.infrastructure(Settings(data_dir=tmp_path), ephemeral=False)
    assert [p.name for p in parts] == ["broker"] and "memory://tansu/" in parts[0].argv
    assert warning.startswith("warning:") and "memory storage" in warning


def test_ephemeral_asks_for_memory_and_an_external_kafka_starts_nothing(tmp_path):
    parts, warning = infra.infrastructure(Settings(data_dir=tmp_path), ephemeral=True)
    assert [p.name for p in parts] == ["broker"] and "memory://tansu/" in parts[0].argv and warning is None
    assert infra.infrastructure(Settings(data_dir=tmp_path, kafka_bootstrap="kafka:9092"), ephemeral=False) == ([], None)
