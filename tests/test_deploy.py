"""Deployment files: valid compose and Kubernetes manifests that run every service."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nemo_server.common.services import existing_services

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_compose_is_valid_and_runs_every_service() -> None:
    path = ROOT / "docker" / "docker-compose.yml"
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    compose = yaml.safe_load(path.read_text())
    urls = json.loads(compose["x-service"]["environment"]["NEMO_SERVICE_URLS"])
    for spec in existing_services():
        service = compose["services"][spec.name]
        assert service["command"][0] == spec.name
        assert service["command"][service["command"].index("--port") + 1] == str(spec.port)
        assert urls[spec.name] == f"http://{spec.name}:{spec.port}"
    assert set(compose["x-service"]["secrets"]) >= {"jwt_key", "db_key", "internal_key"}


def _k8s_documents() -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl:
        rendered = subprocess.run(
            [kubectl, "kustomize", str(ROOT / "k8s" / "base")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [d for d in yaml.safe_load_all(rendered) if d]
    docs: list[dict] = []
    for name in yaml.safe_load((ROOT / "k8s" / "base" / "kustomization.yaml").read_text())[
        "resources"
    ]:
        docs += [d for d in yaml.safe_load_all((ROOT / "k8s" / "base" / name).read_text()) if d]
    return docs


def test_kubernetes_manifests_validate_and_cover_every_service(tmp_path: Path) -> None:
    docs = _k8s_documents()
    rendered = tmp_path / "all.yaml"
    rendered.write_text(yaml.safe_dump_all(docs))
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", str(rendered)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for spec in existing_services():
        container = deployments[spec.name]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"][0] == spec.name
        assert container["ports"][0]["containerPort"] == spec.port
        assert services[spec.name]["spec"]["ports"][0]["port"] == spec.port
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/run/secrets" in mounts


@pytest.mark.parametrize("name", ["docker/Dockerfile", "scripts/kind-gpu.yaml"])
def test_other_deployment_files_exist(name: str) -> None:
    assert (ROOT / name).read_text().strip()
