"""The gateway's own settings reach the running gateway: CLONEDESK_GATEWAY_MAX_BODY_BYTES bounds a body
(413) unless `--max-body-bytes` says otherwise. No broker is needed: the size is checked before anything
else."""

from __future__ import annotations

import httpx

from clonedesk.core.settings import Settings
from clonedesk.ingest.settings import IngestSettings
from tests.conftest import free_port
from tests.ingest.harness import start_service, stop_service, wait_for_http


def test_the_gateway_limits_read_their_settings(monkeypatch):
    monkeypatch.setenv("CLONEDESK_GATEWAY_MAX_BODY_BYTES", "64")
    monkeypatch.setenv("CLONEDESK_GATEWAY_SIGNATURE_TOLERANCE_S", "30")
    settings = IngestSettings.from_settings(Settings(gateway_port=1234))
    assert (settings.gateway_max_body_bytes, settings.gateway_signature_tolerance_s) == (64, 30.0)
    assert settings.gateway_port == 1234  # the shared settings come along


def _status(url: str, size: int) -> int:
    return httpx.post(f"{url}/webhooks/zendesk/nobody", content=b"x" * size, timeout=10).status_code


def test_a_body_over_the_configured_limit_gets_413_and_the_option_overrides_it(tmp_path):
    port = free_port()
    env = {**Settings(data_dir=tmp_path / "data", kafka_bootstrap="127.0.0.1:1", gateway_port=port).child_env(),
           "CLONEDESK_GATEWAY_MAX_BODY_BYTES": "64"}
    for args, expected in ((["ingest"], 413), (["ingest", "--max-body-bytes", "1000"], 404)):
        gateway = start_service(args, env, tmp_path / "gateway.log")
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", gateway)
            assert _status(f"http://127.0.0.1:{port}", 100) == expected  # 404: past the size, an unknown tenant
            assert _status(f"http://127.0.0.1:{port}", 10) == 404
        finally:
            stop_service(gateway)
