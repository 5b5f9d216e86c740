"""How trainctl reads the service's answers, on a fake transport (one piece, unit): a
restarting service is waited out while a job is followed, and answers that are not the
service's JSON, or never come, are errors that say so, not tracebacks."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
import typer

from serve_app import cli_http
from serve_app.cli_http import ApiError, call, fail, poll

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Handler]]:
    """The handlers of the next requests, in order."""
    queue: list[Handler] = []

    def client() -> httpx.Client:
        return httpx.Client(
            base_url="http://service", transport=httpx.MockTransport(lambda r: queue.pop(0)(r))
        )

    monkeypatch.setattr(cli_http, "http_client", client)
    monkeypatch.setattr(cli_http, "POLL_RETRY_SECONDS", 0.0)
    yield queue
    assert queue == [], "some answers were never asked for"


def answer(status: int, **kwargs: object) -> Handler:
    return lambda request: httpx.Response(status, **kwargs)  # type: ignore[arg-type]


def test_a_restarting_service_is_waited_out_while_a_job_is_followed(
    answers: list[Handler],
) -> None:
    answers += [
        answer(503, json={"detail": "the database is unavailable"}),
        answer(200, json={"status": "completed"}),
    ]
    assert poll("/ai/training/jobs/j") == {"status": "completed"}


def test_other_errors_end_the_following_at_once(answers: list[Handler]) -> None:
    answers.append(answer(404, json={"detail": "training job 'j' not found"}))
    with pytest.raises(typer.Exit):
        poll("/ai/training/jobs/j")


def test_an_answer_that_is_not_the_services_json_says_so(answers: list[Handler]) -> None:
    answers.append(answer(200, text="<html>sign in</html>"))
    with pytest.raises(ApiError, match="not JSON: is TRAINING_API_URL the service"):
        call("GET", "/ai/training/jobs")


def test_error_bodies_of_any_shape_are_reported(answers: list[Handler]) -> None:
    answers += [answer(400, json=["odd"]), answer(502, text="Bad gateway")]
    for _ in range(2):
        with pytest.raises(ApiError) as raised:
            call("GET", "/ai/training/jobs")
        assert isinstance(fail(raised.value), typer.Exit)


def test_no_answer_in_time_says_the_request_may_have_been_carried_out(
    answers: list[Handler],
) -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    answers.append(timeout)
    with pytest.raises(ApiError, match="may still have been carried out"):
        call("PUT", "/ai/training/feature-sets/x", content=b"t,y\n")
