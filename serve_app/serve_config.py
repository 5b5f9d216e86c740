"""The Serve config file, ``deploy/serve_config.yaml`` (the format ``serve build`` writes):
the one description of the application, which ``trainctl up`` and the tests run and
KubeRay's ``RayService`` embeds as ``serveConfigV2``."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import yaml
from ray.serve.deployment import Application
from ray.serve.schema import DeploymentSchema, ServeApplicationSchema, ServeDeploySchema

SERVE_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "serve_config.yaml"

Builder = Callable[[dict[str, Any]], Application]


def load_application(path: Path = SERVE_CONFIG) -> ServeApplicationSchema:
    """The config's one application, validated by Serve's own schema."""
    config = ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))
    if len(config.applications) != 1:
        raise ValueError(f"{path} must describe one application, not {len(config.applications)}")
    return config.applications[0]


def import_builder(import_path: str) -> Builder:
    """The application builder ``import_path`` names (``module:name`` or ``module.name``)."""
    module, separator, name = import_path.partition(":")
    if not separator:
        module, _, name = import_path.rpartition(".")
    builder: Builder = getattr(importlib.import_module(module), name)
    return builder


def with_options(app: Application, deployments: Iterable[DeploymentSchema]) -> Application:
    """``app`` with the config's options for its deployments, as ``serve deploy`` applies
    them over the ones in code.

    Raises:
        ValueError: the config names a deployment the application does not have.
    """
    options = {
        schema.name: schema.model_dump(exclude_unset=True, exclude={"name"})
        for schema in deployments
    }
    unused = set(options)

    def rebind(node: Application) -> Application:
        deployment = node._bound_deployment
        unused.discard(deployment.name)
        args = [rebind(a) if isinstance(a, Application) else a for a in deployment.init_args]
        kwargs = {
            key: rebind(value) if isinstance(value, Application) else value
            for key, value in cast(dict[str, Any], deployment.init_kwargs).items()  # mistyped
        }
        configured = deployment.options(**options.get(deployment.name, {}))
        return configured.bind(*args, **kwargs)

    configured = rebind(app)
    if unused:
        raise ValueError(f"the Serve config names deployments the app lacks: {sorted(unused)}")
    return configured


def application(config: ServeApplicationSchema, args: Mapping[str, Any]) -> Application:
    """The app ``config``'s builder makes from ``args``, with the config's deployment options."""
    built = import_builder(config.import_path)(dict(args))
    return with_options(built, config.deployments)
