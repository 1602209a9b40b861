"""Wire-level faults shared by both simulators: what a broken network, a hung upstream or a proxy does to an answer.

The fault kinds of a scripted failure (``fail_next``):

* ``status``: answer the rule's status (the default; the simulator builds the error body).
* ``drop_before``: close the connection without a response; the handler does not run.
* ``drop_after``: run the handler (the server acts), then close the connection without sending the response.
* ``html``: answer 200 ``text/html`` with a login/maintenance page, as a proxy in front of the API would.
* ``truncated``: run the handler, then send the status line, the headers (the full ``Content-Length``) and half of
  the body, and close the connection. An answer without a body cannot be cut: it is dropped as ``drop_after``.
* ``hang``: wait ``hang_seconds`` before answering normally; when the client gives up first, the request is
  abandoned without running the handler.

Closing the connection needs the server's socket, so these work under uvicorn (the ASGI ``send`` of its request
cycle); without one (an in-process ASGI transport) ``ConnectionDropped`` is raised instead.
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from starlette.responses import Response
from starlette.types import Message, Send

FaultKind = Literal["status", "drop_before", "drop_after", "html", "truncated", "hang"]
HELD_KINDS = frozenset({"drop_before", "drop_after", "truncated"})  # the response is kept back, then mangled

HTML_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - Service temporarily unavailable</title></head>
<body><h1>Scheduled maintenance</h1>
<p>The service is being upgraded. Please sign in again when it is back.</p>
<form method="post" action="/login"><input name="username"><input name="password" type="password">
<button>Sign in</button></form></body></html>
"""


class ConnectionDropped(ConnectionError):
    """Raised when a drop is injected but no uvicorn transport is at hand (e.g. an in-process ASGI transport)."""


def html_page() -> Response:
    """A proxy's login or maintenance page, answered with 200 where the API promised JSON."""
    return Response(HTML_PAGE, status_code=200, media_type="text/html; charset=utf-8")


def _cycle(send: Send) -> object | None:
    """uvicorn's request cycle behind its ``send`` (the bound method's owner), if that is what ``send`` is."""
    return getattr(send, "__self__", None)


def client_gone(send: Send) -> bool:
    return bool(getattr(_cycle(send), "disconnected", False))


async def drop(send: Send) -> None:
    """Close the connection without sending another byte (uvicorn), or raise where there is no socket."""
    cycle = _cycle(send)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionDropped("simulated dropped connection")
    transport.close()
    for _ in range(500):  # connection_lost marks the cycle disconnected, so uvicorn sends nothing more
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0.001)
    setattr(cycle, "disconnected", True)  # noqa: B010 - uvicorn's cycle has no type we can name here


async def hang(seconds: float, send: Send) -> bool:
    """Wait ``seconds``; False when the client gave up first (then there is nobody left to answer)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if client_gone(send):
            return False
        await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return not client_gone(send)


class HeldResponse:
    """An ASGI ``send`` that keeps the response instead of sending it, so a fault can mangle it afterwards."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.body.extend(message.get("body", b""))


async def deliver(kind: str, held: HeldResponse, send: Send) -> None:
    """Send what ``kind`` lets through of the held response: nothing (drops) or half of it (truncated)."""
    if kind != "truncated" or held.start is None or not held.body:
        await drop(send)
        return
    body = bytes(held.body)
    headers = [(k, v) for k, v in held.start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": held.start["status"], "headers": headers})
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    await drop(send)
