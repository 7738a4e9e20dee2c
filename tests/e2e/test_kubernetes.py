"""deploy/kubernetes: every school's overlay renders (`kubectl kustomize`) and every object
validates offline against the Kubernetes schemas (kubernetes-validate's bundled ones), with
the shape the README promises."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as validate_utils
from kubernetes_validate import validate
from sqlalchemy import create_engine, text

from credmail.config import Settings, load_settings
from credmail.entrypoints.cli import _parser
from tests.conftest import PG_URL

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
        "CronJob",
        "Deployment",
        "Deployment",
        "Namespace",
        "NetworkPolicy",
        "NetworkPolicy",
        "PersistentVolumeClaim",
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
    objects = render(overlay)
    settings = load_settings(school_config(objects, tmp_path), environ={})
    assert settings.database.schema_ == overlay.replace("-", "_")
    assert not settings.database.prepared_statements
    assert settings.replies.school_name  # the school's identity is set
    # SIGTERM to SIGKILL: the daemon's own bound on stopping fits, with room to spare
    grace = pod(deployment(objects, "credmail"))["terminationGracePeriodSeconds"]
    assert settings.daemon.shutdown_seconds + 5 <= grace
    # both web replicas sign forms with the Secret's key, and believe only the ingress
    assert settings.web.secret_key_file is not None and settings.web.secret_key
    assert settings.web.secret_key_file.name == "web-secret-key"  # from the Secret's mount
    assert settings.web.trusted_proxies


def school_config(
    objects: list[dict[str, Any]],
    tmp_path: Path,
    database_url: str = "postgresql+psycopg://school@pgbouncer:6432/credmail",
) -> Path:
    """The overlay's credmail.toml written to `tmp_path`, its secret files beside it."""
    (config_map,) = by_kind(objects, "ConfigMap")
    text = config_map["data"]["credmail.toml"]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for section in tomllib.loads(text).values():
        for key, value in section.items():
            if key.endswith("_file"):
                assert value.startswith("/run/secrets/credmail/")
                secret = database_url if key == "url_file" else "a-real-secret-" + "0" * 32
                file = secrets / Path(value).name
                file.write_text(secret)
                file.chmod(0o440)  # the Secret's defaultMode (base/*.yaml)
    if "web" not in Settings.model_fields:  # `credmail web` (another issue) not merged yet
        text = text.split("[web]")[0]
    path = tmp_path / "credmail.toml"
    path.write_text(text.replace("/run/secrets/credmail", str(secrets)))
    return path


# -- the schema: one workload migrates it, every other one waits for it -----------------

NEEDS_SCHEMA = {"run", "web", "status"}


def pod(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def command(container: dict[str, Any]) -> argparse.Namespace:
    """A container's arguments (the image's entry point is `credmail`) as the CLI reads them."""
    try:
        return _parser().parse_args(container["args"])
    except SystemExit:
        raise AssertionError(f"not a credmail command: {container['args']}") from None


def schema_step(workload: dict[str, Any]) -> list[str]:
    """What the pod's init containers do about the schema: ["upgrade"], ["wait"] or []."""
    found = []
    for init in pod(workload).get("initContainers", []):
        args = command(init)
        if args.command == "db":
            found.append(args.db_command)
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_that_needs_the_schema_waits_for_it(overlay: str) -> None:
    workloads = [o for o in render(overlay) if "template" in o.get("spec", {})]
    assert workloads
    steps = {}
    for workload in workloads:
        (main,) = pod(workload)["containers"]
        assert command(main).command in NEEDS_SCHEMA
        (step,) = schema_step(workload)  # before the main container, one init container
        steps[workload["metadata"]["name"]] = step
        for init in pod(workload)["initContainers"]:
            assert init["image"] == main["image"]  # the same revision as the code it guards
            assert command(init).config == command(main).config
    # exactly one migrates: the daemon, one replica, Recreate (never two migrations at once)
    assert steps == {"credmail": "upgrade", "credmail-web": "wait"}
    web = deployment(render(overlay), "credmail-web")
    (wait,) = pod(web)["initContainers"]
    assert command(wait).timeout >= 300  # the daemon's migration has time to finish
    rolling = web["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0  # old pages serve while a new pod waits


def test_the_check_finds_a_workload_without_its_wait() -> None:
    web = deployment(render(OVERLAYS[0]), "credmail-web")
    del pod(web)["initContainers"]
    assert schema_step(web) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_command_in_the_manifests_is_a_credmail_command(overlay: str) -> None:
    for workload in by_kind(render(overlay), "Deployment"):
        for container in pod(workload).get("initContainers", []) + pod(workload)["containers"]:
            assert command(container).handler
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                run = container.get(probe, {}).get("exec")
                if run:
                    assert run["command"][0] == "credmail"
                    assert command({"args": run["command"][1:]}).handler


@pytest.fixture
def school_schemas() -> Iterator[None]:
    def drop() -> None:
        engine = create_engine(PG_URL)
        with engine.begin() as conn:
            for overlay in OVERLAYS:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{overlay.replace("-", "_")}" CASCADE'))
        engine.dispose()

    drop()
    yield
    drop()


@pytest.mark.usefixtures("school_schemas")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_init_containers_commands_on_postgresql(overlay: str, tmp_path: Path) -> None:
    """The web pod's wait holds until the daemon pod's init container has migrated the
    school's schema, then lets the pages start (the manifests' own arguments)."""
    objects = render(overlay)
    config = str(school_config(objects, tmp_path, database_url=PG_URL))
    (upgrade,) = pod(deployment(objects, "credmail"))["initContainers"]
    (wait,) = pod(deployment(objects, "credmail-web"))["initContainers"]

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        args = [config if arg == "/etc/credmail/credmail.toml" else arg for arg in args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")}
        return subprocess.run(
            [sys.executable, "-m", "credmail", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    too_early = run([*wait["args"][:-1], "1"])  # the manifest waits 600 s: here 1
    assert too_early.returncode == 1 and "not at the newest revision" in too_early.stderr
    assert run(upgrade["args"]).returncode == 0
    started = time.monotonic()
    ready = run(wait["args"])
    assert ready.returncode == 0, ready.stderr
    assert time.monotonic() - started < 30


@pytest.mark.usefixtures("school_schemas")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_nightly_backup_keeps_a_count_on_its_own_volume(overlay: str, tmp_path: Path) -> None:
    """The CronJob runs `credmail db backup --keep N` into the claim's volume, one at a time,
    as the daemon's non-root, read-only, labelled pod (the NetworkPolicy lets it reach the
    database); its own arguments, run against a migrated schema, write a backup."""
    objects = render(overlay)
    (cron,) = by_kind(objects, "CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    template = cron["spec"]["jobTemplate"]["spec"]["template"]
    assert template["metadata"]["labels"]["app.kubernetes.io/name"] == "credmail"
    job = template["spec"]
    assert job["securityContext"]["runAsNonRoot"] is True
    assert job["automountServiceAccountToken"] is False
    (container,) = job["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "env" not in container and "envFrom" not in container
    args = command(container)
    assert (args.command, args.db_command) == ("db", "backup") and args.keep >= 7
    (claim,) = by_kind(objects, "PersistentVolumeClaim")
    mounted = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    (volume,) = [v for v in job["volumes"] if v["name"] == mounted[str(args.path)]]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]

    config = str(school_config(objects, tmp_path, database_url=PG_URL))
    backups = tmp_path / "backups"
    backups.mkdir()
    replaced = {"/etc/credmail/credmail.toml": config, str(args.path): str(backups)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")}
    for step in (
        ["--config", config, "db", "upgrade"],
        [replaced.get(a, a) for a in container["args"]],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "credmail", *step],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    (written,) = backups.iterdir()
    assert written.name.startswith("credmail-") and written.suffix == ".pgdump"
