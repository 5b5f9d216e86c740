"""A ceiling on request bodies, so an oversized one is refused before it is read (413).

Feature-set uploads (a set's file, rows appended to it) have their own, larger limit and
are left to their routes; every other body under the feature sets, their labelled
windows, say, has this one.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_PREFIX = "/ai/training/feature-sets/"


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_upload(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = BodyTooLarge(self.max_bytes).detail
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)


def is_upload(method: str, path: str) -> bool:
    """``PUT /ai/training/feature-sets/{name}`` or ``POST .../{name}/rows``."""
    if not path.startswith(UPLOAD_PREFIX):
        return False
    parts = path[len(UPLOAD_PREFIX) :].strip("/").split("/")
    return (method == "PUT" and len(parts) == 1) or (
        method == "POST" and len(parts) == 2 and parts[1] == "rows"
    )


class BodyTooLarge(HTTPException):
    """Raised inside the app when a body without Content-Length (sent chunked) grows past
    the limit: an HTTPException, which FastAPI's body reader lets through as the 413 it is
    (any other error there becomes its 400 "error parsing the body")."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body over {max_bytes // 2**20} MiB")
