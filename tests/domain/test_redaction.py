"""URLs lose their passwords in what is shown, however the password is written."""

from __future__ import annotations

import pytest

from domain.redaction import redact, redact_url, secrets_of


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+asyncpg://u:pw12@db:5432/t", "postgresql+asyncpg://u:***@db:5432/t"),
        ("postgresql+asyncpg://u:p@ss:w/rd@db/t", "postgresql+asyncpg://u:***@db/t"),
        ("postgresql+asyncpg://u@db/t", "postgresql+asyncpg://u@db/t"),
        ("sqlite+aiosqlite:////data/training.db", "sqlite+aiosqlite:////data/training.db"),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_text_loses_every_urls_password_and_the_given_secrets() -> None:
    url = "postgresql+asyncpg://u:Secret%40Word@db/t"
    message = f"cannot reach {url}; host 'Word@db' unknown; s3://key:s3cret@bucket/x failed"
    shown = redact(message, secrets_of(url))
    assert "Secret" not in shown
    assert "Word" not in shown
    assert "s3cret" not in shown
    assert "postgresql+asyncpg://u:***@db/t" in shown
    assert "s3://key:***@bucket/x" in shown
