"""``JiraClient``: the Jira Cloud REST v3 operations the connector needs, over one ``ApiSession``.

Each group of operations is a mixin in its own module over :class:`~ml_connector.jira.base.JiraBase` (metadata,
single issues, transitions, bulk create, search, users, dynamic webhooks); this class puts them together and builds
the session from the configuration (:mod:`ml_connector.jira.connect`).
"""

from __future__ import annotations

import httpx2

from ml_connector.config.connections import JiraConnection
from ml_connector.http import ApiSession, CallObserver, Pacer
from ml_connector.jira.auth import OAuthTokenManager
from ml_connector.jira.bulk import BulkOps
from ml_connector.jira.connect import SessionOptions, open_session
from ml_connector.jira.dynamic_webhooks import WebhookOps
from ml_connector.jira.search import SearchOps
from ml_connector.jira.tokens import TokenStore
from ml_connector.jira.transitions import TransitionOps
from ml_connector.jira.users import UserOps, UserResolver


class JiraClient(SearchOps, TransitionOps, BulkOps, UserOps, WebhookOps):
    """Facade over the Jira Cloud REST API v3 for one site."""

    def __init__(
        self,
        session: ApiSession,
        *,
        token_manager: OAuthTokenManager | None = None,
        user_cache_ttl: float = 3600.0,
    ) -> None:
        super().__init__(session, token_manager=token_manager)
        self.users = UserResolver(self.search_users, ttl=user_cache_ttl)

    @classmethod
    def from_connection(
        cls,
        connection: JiraConnection,
        *,
        token_store: TokenStore | None = None,
        pacer: Pacer | None = None,
        observer: CallObserver | None = None,
        transport: httpx2.BaseTransport | None = None,
    ) -> JiraClient:
        """Build the client: Basic against the site URL; OAuth against ``{api_url}/ex/jira/{cloudId}``."""
        options = SessionOptions(pacer=pacer, observer=observer, transport=transport)
        session, manager = open_session(connection, options, token_store)
        return cls(session, token_manager=manager)
