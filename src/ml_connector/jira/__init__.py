"""Jira Cloud client: auth (Basic, OAuth 3LO), issues, search, transitions, fields, users, ADF, JQL, webhooks."""

from ml_connector.jira.adf import adf_to_text, text_to_adf
from ml_connector.jira.auth import OAuthTokenManager, authorize_url, discover_cloud_id
from ml_connector.jira.bulk import BULK_LIMIT
from ml_connector.jira.client import JiraClient
from ml_connector.jira.fields import FieldInfo, FieldRegistry
from ml_connector.jira.jql import quote as jql_quote
from ml_connector.jira.jql import updated_bound, updated_since
from ml_connector.jira.models import CreatedIssue, CreateOutcome, DraftIssue, JiraFailure, Transition, Webhook
from ml_connector.jira.paging import PagingError
from ml_connector.jira.tokens import FileTokenStore, MemoryTokenStore, TokenSet, TokenStore
from ml_connector.jira.users import UserResolution, UserResolver, choose_user
from ml_connector.jira.webhooks import (
    WebhookVerificationError,
    delivery_identifier,
    sign_body,
    verify_jwt,
    verify_signature,
)

__all__ = [
    "BULK_LIMIT",
    "CreateOutcome",
    "CreatedIssue",
    "DraftIssue",
    "FieldInfo",
    "FieldRegistry",
    "FileTokenStore",
    "JiraClient",
    "JiraFailure",
    "MemoryTokenStore",
    "OAuthTokenManager",
    "PagingError",
    "TokenSet",
    "TokenStore",
    "Transition",
    "UserResolution",
    "UserResolver",
    "Webhook",
    "WebhookVerificationError",
    "adf_to_text",
    "authorize_url",
    "choose_user",
    "delivery_identifier",
    "discover_cloud_id",
    "jql_quote",
    "sign_body",
    "text_to_adf",
    "updated_bound",
    "updated_since",
    "verify_jwt",
    "verify_signature",
]
