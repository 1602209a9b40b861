"""Shared HTTP layer: client factory, response classifier, retries, pacing and redaction."""

from ml_connector.http.classify import parse_retry_after, raise_for_response
from ml_connector.http.client import build_client, user_agent
from ml_connector.http.pacing import Pacer, TokenBucket
from ml_connector.http.redact import redact, redact_headers, redact_text
from ml_connector.http.session import ApiSession, CallObserver

__all__ = [
    "ApiSession",
    "CallObserver",
    "Pacer",
    "TokenBucket",
    "build_client",
    "parse_retry_after",
    "raise_for_response",
    "redact",
    "redact_headers",
    "redact_text",
    "user_agent",
]
