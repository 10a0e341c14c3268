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
    assert by_name[("Deployment", "gateway")]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for doc in docs:
        for c in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            assert c["args"][0] in main.commands, c["args"]
