"""Schemathesis fuzzes every operation of the OpenAPI schema against the deployed service:
no 5xx, and every response matches the schema (status code, content type, headers, body).

Schema-valid requests may still be refused when they name things that do not exist (an
unknown feature set is a 422 the schema cannot express), so acceptance is not checked."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from tests.serve_app.conftest import Deployed

#: Examples per operation, for each of the schema's operations (it was 20: twice the time).
EXAMPLES_PER_OPERATION = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.mark.slow
def test_fuzzed_requests_get_no_5xx_and_valid_responses(service: Deployed) -> None:
    schema = schemathesis.openapi.from_url(f"{service.running.api_url}/openapi.json")
    headers = {"Authorization": f"Bearer {service.admin_key}"}
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), "the schema is valid OpenAPI"
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) >= 25, "every router is in the schema"
    with httpx.Client(base_url=service.running.api_url, headers=headers, timeout=30) as client:
        schedules_before = set(schedule_ids(client))
        try:
            for operation in operations:

                @given(operation.as_strategy())
                @settings(
                    max_examples=EXAMPLES_PER_OPERATION,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                    database=None,
                )
                def check(case: Any) -> None:
                    case.call_and_validate(headers=headers, checks=CHECKS)

                check()
        finally:
            clean_up(client, schedules_before)


def schedule_ids(client: httpx.Client) -> list[str]:
    return [s["schedule_id"] for s in client.get("/ai/training/schedules").json()["schedules"]]


def clean_up(client: httpx.Client, schedules_before: set[str]) -> None:
    """Schema-valid requests can start real jobs (the schema's example names a real feature
    set) and create schedules; cancel and delete them so later tests start idle."""
    for status in ("queued", "running"):
        for _ in range(100):  # pages of 20; cancelled jobs leave the list
            jobs = client.get("/ai/training/jobs", params={"status": status}).json()["jobs"]
            if not jobs:
                break
            for job in jobs:
                client.delete(f"/ai/training/jobs/{job['job_id']}")
    for schedule_id in set(schedule_ids(client)) - schedules_before:
        client.delete(f"/ai/training/schedules/{schedule_id}")
