"""The production files stay valid: docker-compose.yml parses for compose, the kustomize overlay builds,
and every service container runs a command the CLI has."""

import shutil
import subprocess

import yaml

from clonedesk.cli import main
from tests.conftest import REPO


def _compose() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    assert shutil.which("docker-compose"), "install docker-compose (make setup does) to validate the compose file"
    return ["docker-compose"]


def test_compose_file_validates_with_every_profile():
    for profile in ("cpu", "gpu"):
        result = subprocess.run([*_compose(), "-f", str(REPO / "docker-compose.yml"), "--profile", profile, "config", "-q"],
                                capture_output=True, text=True, cwd=REPO, timeout=120)
        assert result.returncode == 0, result.stderr


def test_compose_services_run_real_cli_commands():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "clickhouse", "otel-collector"} <= set(services)
    commands = {s["command"][0] for name, s in services.items() if name not in {"kafka", "clickhouse", "otel-collector"}}
    assert commands <= set(main.commands), commands - set(main.commands)
    assert services["resolver-gpu"]["environment"]["CLONEDESK_ENGINE"] == "vllm"


def test_kustomize_overlay_builds_with_probes_and_gpu_resolver():
    result = subprocess.run(["kubectl", "kustomize", str(REPO / "deploy" / "overlays" / "production")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    resolver = by_name[("Deployment", "resolver")]
    container = resolver["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1 and "readinessProbe" in container
    assert resolver["spec"]["replicas"] == 4  # the production overlay applied
    affinity = by_name[("DestinationRule", "resolver-tenant-affinity")]["spec"]
    assert affinity["host"] == "resolver"
    assert affinity["trafficPolicy"]["loadBalancer"]["consistentHash"]["httpHeaderName"] == "x-tenant-id"
    assert by_name[("Deployment", "gateway")]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for doc in docs:
        for c in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            assert c["args"][0] in main.commands, c["args"]


def test_containers_listen_beyond_loopback_and_wait_for_their_topics():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    ours = {name: s for name, s in services.items() if name not in {"kafka", "clickhouse", "otel-collector"}}
    for name, service in ours.items():
        assert service["environment"]["CLONEDESK_BIND_HOST"] == "0.0.0.0", name
        if name != "topics":
            assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully", name
    # the bridge calls resolver:50051 whichever profile runs the resolver
    assert "resolver" in services["resolver-gpu"]["networks"]["default"]["aliases"]
    config = yaml.safe_load((REPO / "deploy" / "base" / "config.yaml").read_text())
    assert config["data"]["CLONEDESK_BIND_HOST"] == "0.0.0.0"


def test_the_gateway_listens_on_the_configured_interface(tmp_path):
    import os
    import sys

    import psutil

    from tests.conftest import free_port, wait_until

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLONEDESK_")}
    env.update(CLONEDESK_DATA_DIR=str(tmp_path), CLONEDESK_GATEWAY_PORT=str(port), CLONEDESK_BIND_HOST="0.0.0.0",
               CLONEDESK_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}")
    process = subprocess.Popen([sys.executable, "-m", "clonedesk", "ingest"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        def listening():
            return [c.laddr.ip for c in psutil.Process(process.pid).net_connections(kind="tcp")
                    if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
        assert wait_until(listening, timeout=60, message="the gateway to listen") == ["0.0.0.0"]
    finally:
        process.terminate()
        process.wait(timeout=20)
