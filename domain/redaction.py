"""Passwords kept out of what is shown: URLs in messages, log lines and reprs.

A URL's password is whatever lies between its user name and the last ``@`` before its
host; a password with an unencoded ``@`` or ``:`` is split differently by other parsers
(SQLAlchemy's host may then begin with part of it), so ``secrets_of`` names its pieces too.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
#: ``scheme://user:password@`` anywhere in a text (up to the first ``@`` after the colon).
_CREDENTIALS = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]*):[^\s@]*@")
#: Pieces of a password shorter than this are left alone: they would mask ordinary text.
_SHORTEST_PIECE = 4


def password_of(url: str) -> str | None:
    """The password of ``url`` as written (None: it has none)."""
    _, separator, rest = url.partition("://")
    credentials, at, _ = rest.rpartition("@")
    if not separator or not at:
        return None
    _, colon, password = credentials.partition(":")
    return password if colon and password else None


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    password = password_of(url)
    if password is None:
        return url
    scheme, _, rest = url.partition("://")
    credentials, _, host = rest.rpartition("@")
    user = credentials.partition(":")[0]
    return f"{scheme}://{user}:{MASK}@{host}"


def secrets_of(url: str) -> tuple[str, ...]:
    """What of ``url`` must never be shown: its password as written and decoded, and the
    pieces a parser may split it into."""
    password = password_of(url)
    if password is None:
        return ()
    whole = {password, unquote(password)}
    pieces = {p for w in whole for p in re.split(r"[@:]", w) if len(p) >= _SHORTEST_PIECE}
    return tuple(sorted(whole | pieces, key=len, reverse=True))


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every URL's password, and each of ``secrets``, replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return _CREDENTIALS.sub(rf"\1:{MASK}@", text)
