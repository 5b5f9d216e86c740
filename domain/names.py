"""Names users give things (tenants, models, feature sets, schedules) and model ids."""

from __future__ import annotations

import re

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


def is_valid_name(name: str) -> bool:
    return re.fullmatch(NAME_PATTERN, name) is not None


def model_id(tenant_id: str, model_name: str, version: str) -> str:
    """A registered model's id: ``tenant:name:version``."""
    return f"{tenant_id}:{model_name}:{version}"
