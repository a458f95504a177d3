"""The container and deployment files: hadolint on the Dockerfile, kubernetes-validate
(strict, bundled schemas, no network) on the manifests, and consistency checks
between them and the code (settings names, commands, probes)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kv
from typer.testing import CliRunner

from service.cli import app as cli_app
from service.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "deploy" / "compose.yaml"
HADOLINT = Path(sys.executable).parent / "hadolint"
K8S_VERSION = "1.30.0"
SETTINGS = {f"IMI_{name.upper()}" for name in Settings.model_fields}


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dockerfile_passes_hadolint() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_fail_on_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install curl\nCMD imi-api serve\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the :latest tag


def test_dockerfile_is_multi_stage_slim_non_root_and_health_checked() -> None:
    text = DOCKERFILE.read_text()
    froms = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert froms == ["FROM python:3.11-slim AS build", "FROM python:3.11-slim"]
    assert "requirements.lock" in text
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users == ["10001:10001"]
    assert "HEALTHCHECK" in text and "/healthz" in text and "curl" not in text.split("HEALTHCHECK")[1]
    assert text.rstrip().endswith('CMD ["imi-api", "serve", "--host", "0.0.0.0"]')
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[1] == "*"  # everything is excluded unless listed


def manifests() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def test_manifests_validate_strictly_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("kubernetes-validate tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    docs = manifests()
    assert docs
    for name, doc in docs:
        try:
            kv.validate(doc, K8S_VERSION, strict=True)
        except kv.ValidationError as exc:
            pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {exc}")
    kinds = sorted({doc["kind"] for _, doc in docs})
    assert kinds == ["ConfigMap", "Deployment", "Job", "PodDisruptionBudget", "Secret", "Service"]


def test_strict_validation_catches_a_misspelt_field() -> None:
    deployment = next(doc for _, doc in manifests() if doc["metadata"]["name"] == "imi-api")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, K8S_VERSION, strict=True)


def _by_name(kind: str, name: str) -> dict[str, Any]:
    return next(doc for _, doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name)


def test_probes_resources_and_security_context() -> None:
    api = _by_name("Deployment", "imi-api")["spec"]["template"]["spec"]
    worker = _by_name("Deployment", "imi-worker")["spec"]["template"]["spec"]
    job = _by_name("Job", "imi-migrate")["spec"]["template"]["spec"]
    (api_c,) = api["containers"]
    (worker_c,) = worker["containers"]
    (job_c,) = job["containers"]
    assert api_c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api_c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api_c["command"] == [
        "imi-api",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--no-worker",
        "--no-migrate",
    ]
    assert worker_c["command"][:2] == ["imi-api", "worker"]
    heartbeat = worker_c["command"][worker_c["command"].index("--heartbeat") + 1]
    assert heartbeat in " ".join(worker_c["livenessProbe"]["exec"]["command"])
    assert job_c["command"] == ["imi-api", "migrate"]
    for pod, container in ((api, api_c), (worker, worker_c), (job, job_c)):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    pdb = _by_name("PodDisruptionBudget", "imi-api")
    assert (
        pdb["spec"]["selector"]["matchLabels"]
        == _by_name("Deployment", "imi-api")["spec"]["selector"]["matchLabels"]
    )
    service = _by_name("Service", "imi-api")
    assert service["spec"]["selector"] == _by_name("Deployment", "imi-api")["spec"]["selector"]["matchLabels"]
    keys_mount = next(m for m in api_c["volumeMounts"] if m["name"] == "keys")
    config = _by_name("ConfigMap", "imi-config")["data"]
    assert keys_mount["mountPath"] == config["IMI_KEYS_DIR"] and keys_mount["readOnly"] is True


def test_every_configured_setting_exists() -> None:
    config = _by_name("ConfigMap", "imi-config")["data"]
    assert set(config) <= SETTINGS, set(config) - SETTINGS
    secret = _by_name("Secret", "imi-database")["stringData"]
    assert set(secret) <= SETTINGS
    compose = yaml.safe_load(COMPOSE.read_text())
    env = compose["x-imi-env"]
    assert set(env) <= SETTINGS, set(env) - SETTINGS


def test_compose_runs_migrate_once_two_apis_and_two_workers() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker"}
    assert services["migrate"]["command"] == ["imi-api", "migrate"]
    assert services["api"]["command"] == [
        "imi-api",
        "serve",
        "--host",
        "0.0.0.0",
        "--no-worker",
        "--no-migrate",
    ]
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["worker"]["command"][:2] == ["imi-api", "worker"]
    assert services["worker"]["deploy"]["replicas"] == 2
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["secrets"] == ["imi_keys"]
    assert compose["x-imi-env"]["IMI_KEYS_DIR"] == "/run/secrets/imi_keys"
    assert compose["x-imi-env"]["IMI_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_the_commands_the_manifests_run_exist() -> None:
    runner = CliRunner()
    serve = runner.invoke(cli_app, ["serve", "--help"])
    assert "--no-worker" in serve.stdout and "--no-migrate" in serve.stdout
    worker = runner.invoke(cli_app, ["worker", "--help"])
    assert "--heartbeat" in worker.stdout
    for command in ("migrate", "export", "import"):
        assert runner.invoke(cli_app, [command, "--help"]).exit_code == 0
