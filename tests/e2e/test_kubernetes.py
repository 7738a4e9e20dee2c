"""deploy/kubernetes: every school's overlay renders (`kubectl kustomize`) and every object
validates offline against the Kubernetes schemas (kubernetes-validate's bundled ones), with
the shape the README promises."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as validate_utils
from kubernetes_validate import validate

from credmail.config import Settings, load_settings

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p.name for p in (KUBERNETES / "overlays").iterdir() if p.is_dir())
EGRESS_PORTS = {("UDP", 53), ("TCP", 53), ("TCP", 993), ("TCP", 143), ("TCP", 465)}
EGRESS_PORTS |= {("TCP", 587), ("TCP", 5432), ("TCP", 6432), ("TCP", 443)}


def render(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is missing: scripts/test installs Debian's kubernetes-client"
    done = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def deployment(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [o for o in by_kind(objects, "Deployment") if o["metadata"]["name"] == name]
    return found


def test_there_are_two_example_schools() -> None:
    assert len(OVERLAYS) == 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_kubernetes_schemas(overlay: str) -> None:
    objects = render(overlay)
    version = validate_utils.latest_version()
    for obj in objects:
        validate(obj, version, strict=True)  # raises on an unknown field or a wrong type
    assert sorted(o["kind"] for o in objects) == [
        "ConfigMap",
        "Deployment",
        "Deployment",
        "Namespace",
        "NetworkPolicy",
        "NetworkPolicy",
        "Service",
    ]
    (namespace,) = by_kind(objects, "Namespace")
    assert namespace["metadata"]["name"] == f"credmail-{overlay}"
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == f"credmail-{overlay}"


def test_the_validator_really_checks() -> None:
    daemon = deployment(render(OVERLAYS[0]), "credmail")
    daemon["spec"]["strategy"]["typo"] = "x"
    with pytest.raises(validate_utils.ValidationError):
        validate(daemon, validate_utils.latest_version(), strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_daemon_runs_once_and_the_web_app_twice_behind_a_service(overlay: str) -> None:
    objects = render(overlay)
    daemon = deployment(objects, "credmail")
    assert daemon["spec"]["replicas"] == 1
    assert daemon["spec"]["strategy"] == {"type": "Recreate"}
    web = deployment(objects, "credmail-web")
    assert web["spec"]["replicas"] == 2
    (service,) = by_kind(objects, "Service")
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["selector"] != daemon["spec"]["template"]["metadata"]["labels"]

    (container,) = daemon["spec"]["template"]["spec"]["containers"]
    assert container["args"][-1] == "run"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["exec"]["command"][0] == "credmail"
        assert container[probe]["exec"]["command"][-1] == "status"
    (init,) = daemon["spec"]["template"]["spec"]["initContainers"]
    assert init["args"][-2:] == ["db", "upgrade"]
    (web_container,) = web["spec"]["template"]["spec"]["containers"]
    assert web_container["args"][-1] == "web"
    for probe in ("livenessProbe", "readinessProbe"):  # not /healthz: a daemon outage must
        assert web_container[probe]["httpGet"]["path"] == "/livez"  # not stop the pages


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_non_root_read_only_secrets_as_files_and_bounded(overlay: str) -> None:
    objects = render(overlay)
    (config_map,) = by_kind(objects, "ConfigMap")
    for obj in by_kind(objects, "Deployment"):
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        secrets = [v for v in pod["volumes"] if "secret" in v]
        assert [v["secret"]["secretName"] for v in secrets] == ["credmail-secrets"]
        (config,) = [v for v in pod["volumes"] if "configMap" in v]
        assert config["configMap"]["name"] == config_map["metadata"]["name"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "env" not in container and "envFrom" not in container  # files, never env
            mounts = {m["name"]: m for m in container["volumeMounts"]}
            assert mounts["secrets"]["readOnly"] is True
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_lets_out_only_what_credmail_needs(overlay: str) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(render(overlay), "NetworkPolicy")}
    everything = policies["credmail"]
    assert everything["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "credmail"}}
    assert set(everything["policyTypes"]) == {"Ingress", "Egress"}
    assert everything["ingress"] == []
    allowed = set()
    for rule in everything["egress"]:
        assert rule.get("ports"), "an egress rule without ports would allow every port"
        allowed |= {(p["protocol"], p["port"]) for p in rule["ports"]}
    assert allowed == EGRESS_PORTS
    web = policies["credmail-web"]
    assert web["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "web"
    assert [p["port"] for r in web["ingress"] for p in r["ports"]] == [8080]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_schools_configuration_is_valid(overlay: str, tmp_path: Path) -> None:
    """The ConfigMap's credmail.toml loads, its secrets read from the Secret's mount."""
    (config_map,) = by_kind(render(overlay), "ConfigMap")
    text = config_map["data"]["credmail.toml"]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    data = tomllib.loads(text)
    for section in data.values():
        for key, value in section.items():
            if key.endswith("_file"):
                assert value.startswith("/run/secrets/credmail/")
                Path(secrets / Path(value).name).write_text(
                    "postgresql+psycopg://school@pgbouncer:6432/credmail"
                    if key == "url_file"
                    else "a-real-secret"
                )
    if "web" not in Settings.model_fields:  # `credmail web` (another issue) not merged yet
        text = text.split("[web]")[0]
    path = tmp_path / "credmail.toml"
    path.write_text(text.replace("/run/secrets/credmail", str(secrets)))
    settings = load_settings(path, environ={})
    assert settings.database.schema_ == overlay.replace("-", "_")
    assert not settings.database.prepared_statements
    assert settings.replies.school_name  # the school's identity is set
