"""Receiving the OAuth consent redirect: a one-shot loopback listener, or a redirect URL pasted by the admin."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

from ml_connector.errors import AuthError, ConfigError, ConnectorError

LOGIN = "ml-connector jira login"  # the command every consent error sends the admin back to
_PAGE = "<html><body><p>{}</p><p>You can close this window.</p></body></html>"


@dataclass(frozen=True)
class Callback:
    """The query of the consent redirect: a code on success, an error when the admin declined."""

    code: str | None
    state: str | None
    error: str | None = None
    error_description: str | None = None

    @classmethod
    def from_query(cls, query: str) -> Callback:
        params = {name: values[0] for name, values in parse_qs(query).items() if values}
        return cls(params.get("code"), params.get("state"), params.get("error"), params.get("error_description"))

    def checked_code(self, expected_state: str | None) -> str:
        """The authorization code, once the redirect is proved to answer this consent (RFC 6749 §10.12)."""
        if self.state != expected_state:
            raise AuthError(
                "the consent redirect carries a different state: it does not answer this request; "
                f"nothing was stored; run `{LOGIN}` again and use the URL it prints",
                system="jira",
            )
        if self.error:
            detail = f" ({self.error_description})" if self.error_description else ""
            raise AuthError(
                f"consent was not given: {self.error}{detail}; nothing was stored; run `{LOGIN}` again and approve "
                "the access as the Jira integration user",
                system="jira",
            )
        if not self.code:
            raise AuthError(f"the consent redirect carries no code; run `{LOGIN}` again", system="jira")
        return self.code


def parse_pasted(value: str) -> Callback:
    """A pasted redirect URL (``...?code=...&state=...``) or a bare code."""
    value = value.strip()
    if "?" in value or value.startswith(("http://", "https://")):
        return Callback.from_query(urlsplit(value).query)
    return Callback(code=value or None, state=None)


def parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--listen wants HOST:PORT such as 127.0.0.1:8765, not {value!r}")
    return host.strip("[]"), int(port)


class _Ipv6Server(HTTPServer):
    address_family = socket.AF_INET6


class CallbackListener:
    """Binds at once (so the port is known before the URL is shown); answers the one redirect to ``path``."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.path = path
        self.received: Callback | None = None
        try:
            server_type = _Ipv6Server if ":" in host else HTTPServer
            self._server = server_type((host, port), self._handler_class())
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} for the consent redirect: {exc.strerror}") from None

    def wait(self, timeout: float) -> Callback:
        """The redirect's query, or an error after ``timeout`` seconds; the listener is closed either way."""
        deadline = time.monotonic() + timeout
        try:
            while self.received is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ConnectorError(
                        f"no consent redirect arrived within {timeout:g} s; run `{LOGIN}` again",
                        system="jira",
                    )
                self._server.timeout = remaining
                self._server.handle_request()
            return self.received
        finally:
            self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != listener.path:  # a favicon or a stray probe: not the redirect
                    self._answer(404, "Not the consent redirect.")
                    return
                listener.received = Callback.from_query(url.query)
                self._answer(200, "ml-connector received the consent answer; see the terminal for the result.")

            def _answer(self, status: int, text: str) -> None:
                body = _PAGE.format(text).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler
