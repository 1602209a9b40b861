"""Shared HTTP layer: client factory, response classifier, retries, pacing and redaction."""

from ml_connector.http.bearer import BearerAuth, BearerToken, BearerTokenCache, granted_lifetime
from ml_connector.http.buckets import Buckets, LocalBuckets
from ml_connector.http.classify import parse_retry_after, raise_for_response, response_json
from ml_connector.http.client import build_client, user_agent
from ml_connector.http.pacing import Pacer
from ml_connector.http.ratelimit import RateLimitBudget, current_budget, rate_limit_scope
from ml_connector.http.redact import redact, redact_headers, redact_text
from ml_connector.http.session import ApiSession, CallObserver

__all__ = [
    "ApiSession",
    "BearerAuth",
    "BearerToken",
    "BearerTokenCache",
    "Buckets",
    "CallObserver",
    "LocalBuckets",
    "Pacer",
    "RateLimitBudget",
    "build_client",
    "current_budget",
    "granted_lifetime",
    "parse_retry_after",
    "raise_for_response",
    "rate_limit_scope",
    "redact",
    "redact_headers",
    "redact_text",
    "response_json",
    "user_agent",
]
