"""The shipped Serve config and KubeRay files describe the application the tests run.

``deploy/serve_config.yaml`` is what ``trainctl up`` and the service fixture deploy;
``deploy/kuberay/rayservice.yaml`` must embed exactly it, set only variables the service
reads, and run on an image of the Ray version the project is tested with. No Ray needed.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import tomllib
from collections.abc import Iterator
from itertools import takewhile
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml
from packaging.requirements import Requirement
from pydantic_settings import BaseSettings
from ray.serve.deployment import Application
from ray.serve.schema import DeploymentSchema
from typer.testing import CliRunner

from actors.admission import TenantLimits
from actors.settings import MlflowSettings
from db.retention import RetentionPolicy
from serve_app.cli import app
from serve_app.deployment import APP_NAME
from serve_app.serve_config import SERVE_CONFIG, application, load_application, with_options
from serve_app.service import build_app, service_config, settings_of

ROOT = Path(__file__).parents[1]
MANIFEST = ROOT / "deploy" / "kuberay" / "rayservice.yaml"
DOCKERFILE = ROOT / "deploy" / "kuberay" / "Dockerfile"
PACKAGES = ("domain", "db", "pipeline", "actors", "serve_app")


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return loaded


def containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each container of the head and the worker groups, with where it is."""
    cluster = spec["rayClusterConfig"]
    groups = [("head", cluster["headGroupSpec"])]
    groups += [(g["groupName"], g) for g in cluster["workerGroupSpecs"]]
    for where, group in groups:
        for container in group["template"]["spec"]["containers"]:
            yield f"{where}/{container['name']}", container


def deployment_names(app: Application) -> set[str]:
    deployment = app._bound_deployment
    bound = [*deployment.init_args, *dict(deployment.init_kwargs).values()]
    nested = [deployment_names(a) for a in bound if isinstance(a, Application)]
    return {deployment.name}.union(*nested)


def known_variables() -> set[str]:
    """``<env_prefix><FIELD>`` of every pydantic-settings class in the project's packages."""
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if ".migrations" not in info.name:
                importlib.import_module(info.name)
    found: set[type[BaseSettings]] = set()
    pending = list(BaseSettings.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in PACKAGES:
            found.add(cls)
    assert len(found) >= 6, found  # database, pipeline, orchestrator, mlflow, retention, api
    return {
        f"{cls.model_config.get('env_prefix', '')}{name}".upper()
        for cls in found
        for name in cls.model_fields
    }


def test_the_rayservice_embeds_the_serve_config_the_tests_run() -> None:
    spec = manifest()["spec"]
    assert yaml.safe_load(spec["serveConfigV2"]) == yaml.safe_load(SERVE_CONFIG.read_text())
    app = load_application(SERVE_CONFIG)  # Serve's own schema accepts it
    assert (app.name, app.route_prefix) == (APP_NAME, "/")
    assert app.import_path == "serve_app.service:build_app"
    assert not app.runtime_env, "the image holds everything: nothing is downloaded at run time"


#: Read only where the orchestrator and the Supervisor run: the admin key, the cluster's size.
HEAD_ONLY = {"TRAINING_ADMIN_KEY_FILE", "TRAINING_MAX_CLUSTER_CPUS", "TRAINING_MAX_NODE_CPUS"}


def test_every_variable_the_rayservice_sets_is_a_setting_of_the_service() -> None:
    known = known_variables()
    assert {
        "TRAINING_DATABASE_URL_FILE",
        "TRAINING_AUTH_ENABLED",
        "TRAINING_MLFLOW_TRACKING_URI",
    } <= known
    seen: dict[str, dict[str, Any]] = {}
    for where, container in containers(manifest()["spec"]):
        env = {variable["name"]: variable for variable in container["env"]}
        unknown = sorted(set(env) - known)
        assert not unknown, f"{where} sets variables no setting reads: {unknown}"
        assert env["TRAINING_AUTH_ENABLED"]["value"] == "true", where
        seen[where] = env
    head, *workers = seen.values()
    assert workers, "a worker group"
    # The orchestrator's own settings are the head's: it runs there (HEAD_NODE_RESOURCE).
    assert set(head) >= HEAD_ONLY
    shared = {name: variable for name, variable in head.items() if name not in HEAD_ONLY}
    assert all(env == shared for env in workers), "the workers read the head's other settings"


def test_the_database_url_is_a_mounted_secret_file_in_no_environment() -> None:
    spec = manifest()["spec"]
    cluster = spec["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for group in groups:
        pod = group["template"]["spec"]
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert pod["securityContext"]["fsGroup"] == 100  # the image's user reads the secret
        for container in pod["containers"]:
            env = {variable["name"]: variable for variable in container["env"]}
            assert "TRAINING_DATABASE_URL" not in env
            path = Path(env["TRAINING_DATABASE_URL_FILE"]["value"])
            [mount] = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == path.parent]
            secret = volumes[mount["name"]]["secret"]
            assert secret["secretName"] == "training-database"
            assert secret["items"] == [{"key": "url", "path": path.name}]


def test_the_cluster_autoscales_its_workers_and_never_runs_beside_a_second() -> None:
    spec = manifest()["spec"]
    assert spec["upgradeStrategy"]["type"] == "None", "two clusters: two orchestrators"
    cluster = spec["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    for group in cluster["workerGroupSpecs"]:
        assert group["minReplicas"] < group["maxReplicas"]


def test_no_task_lands_on_the_head_and_the_maximum_counts_the_workers() -> None:
    """The orchestrator cannot read KubeRay's autoscaler config: the settings say the
    cluster's ceiling and its largest node, the workers' (the head holds no CPU)."""
    cluster = manifest()["spec"]["rayClusterConfig"]
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    workers = [
        (group["maxReplicas"], int(container["resources"]["limits"]["cpu"]))
        for group in cluster["workerGroupSpecs"]
        for container in group["template"]["spec"]["containers"]
    ]
    [head] = cluster["headGroupSpec"]["template"]["spec"]["containers"]
    env = {variable["name"]: variable for variable in head["env"]}
    assert int(env["TRAINING_MAX_CLUSTER_CPUS"]["value"]) == sum(n * cpus for n, cpus in workers)
    assert int(env["TRAINING_MAX_NODE_CPUS"]["value"]) == max(cpus for _, cpus in workers)


def test_the_kuberay_version_its_fields_need_is_stated_wherever_one_is() -> None:
    """``upgradeStrategy`` exists from KubeRay 1.3: on 1.2 it is dropped, and a change to
    the cluster starts a second orchestrator against the same database."""
    text = MANIFEST.read_text()
    assert "upgradeStrategy" in manifest()["spec"]
    header = text.split("apiVersion:", 1)[0]
    assert "KubeRay >= 1.3" in header
    above = text.split("  upgradeStrategy:", 1)[0].splitlines()
    comment = list(takewhile(lambda line: line.strip().startswith("#"), reversed(above)))
    assert "KubeRay >= 1.3" in " ".join(line.strip("# ") for line in reversed(comment))
    readme = (ROOT / "README.md").read_text()
    kubernetes = readme.split("## On Kubernetes", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"\(1\.3\s+or\s+newer\b", kubernetes)
    for where in (text, kubernetes):
        assert not re.search(r"1\.2\s+or\s+newer|>=\s*1\.2\b", where)


def test_the_image_is_rays_own_of_the_version_the_tests_run() -> None:
    base = re.search(r"^FROM rayproject/ray:(\d+\.\d+\.\d+)\S*$", DOCKERFILE.read_text(), re.M)
    assert base is not None, "the image starts from rayproject/ray:<version>"
    version = base.group(1)
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ray_requirement = next(Requirement(d) for d in dependencies if Requirement(d).name == "ray")
    assert ray_requirement.specifier.contains(version)
    assert version == ray.__version__ == manifest()["spec"]["rayClusterConfig"]["rayVersion"]


def test_the_builder_makes_the_application_from_the_configs_args() -> None:
    config = load_application(SERVE_CONFIG)
    app = application(config, config.args)
    assert isinstance(app, Application)
    assert deployment_names(app) == {d.name for d in config.deployments}
    assert app._bound_deployment.max_ongoing_requests == 200


def test_the_configs_deployment_options_win_over_the_codes() -> None:
    app = build_app({})
    options = [DeploymentSchema(name="ModelServer", num_replicas=3)]
    server = next(
        a
        for a in with_options(app, options)._bound_deployment.init_args
        if isinstance(a, Application)
    )
    assert (server._bound_deployment.name, server._bound_deployment.num_replicas) == (
        "ModelServer",
        3,
    )
    with pytest.raises(ValueError, match="Nowhere"):
        with_options(app, [DeploymentSchema(name="Nowhere", num_replicas=1)])


def test_the_builder_receives_the_whole_configuration_it_is_started_with(tmp_path: Path) -> None:
    """``start`` hands a config to the builder as settings by name: nothing is lost."""
    config = service_config(
        {
            "data_dir": tmp_path,
            "database_url": "postgresql+asyncpg://u@h/db",
            "port": 8123,
            "auth_enabled": True,
            "max_concurrent_jobs": 2,
            "actor_name": "orchestrator-x",
            "tenant_limits": {"t": TenantLimits(max_running=1, max_queued=2)},
            "mlflow": MlflowSettings(experiment_prefix="x-", poll_seconds=1),
            "retention": RetentionPolicy(logs_days=3),
            "replicas": 2,
        }
    )
    assert config != service_config({})
    assert service_config(settings_of(config)) == config


def test_trainctl_up_applies_the_configs_args_under_its_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config's args are settings over the environment's, under the command line's:
    each invocation here is refused before Ray starts, by the setting that won."""
    monkeypatch.setenv("TRAINING_HOST", "0.0.0.0")  # with auth off: refused, unless overruled
    config = yaml.safe_load(SERVE_CONFIG.read_text())
    path = tmp_path / "serve_config.yaml"
    runner = CliRunner()

    config["applications"][0]["args"] = {"port": 0}
    path.write_text(yaml.safe_dump(config))
    refused = runner.invoke(app, ["up", "--serve-config", str(path), "--data-dir", str(tmp_path)])
    assert refused.exit_code == 2, refused.output
    assert "error port" in refused.output  # the args' port, checked before the host

    refused = runner.invoke(app, ["up", "--serve-config", str(path), "--port", "8001"])
    assert refused.exit_code == 2, refused.output
    assert "refusing to serve on 0.0.0.0" in refused.output  # --port won over the args'

    missing = runner.invoke(app, ["up", "--serve-config", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2
    assert "none.yaml" in missing.output
