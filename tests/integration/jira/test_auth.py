"""Basic and OAuth 3LO against the simulator: cloudId discovery, single-flight refresh, rotation, persistence."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ml_connector.errors import AuthError
from ml_connector.http import ApiSession, build_client
from ml_connector.jira import FileTokenStore, JiraClient, MemoryTokenStore, OAuthTokenManager, TokenSet

from .helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    CLOUD_ID,
    FAST,
    RecordingTransport,
    Sim,
    basic_connection,
    consent,
    oauth_connection,
)


def _token_calls(sim: Sim) -> int:
    return sum(n for k, n in sim.requests()["counts"].items() if k.startswith("POST") and k.endswith("/oauth/token"))


def test_basic_auth(basic_client: JiraClient, sim: Sim, recorder: RecordingTransport) -> None:
    assert basic_client.myself()["accountId"]
    bad = JiraClient.from_connection(basic_connection(sim, token="wrong-token"), transport=recorder)
    with pytest.raises(AuthError) as info:
        bad.myself()
    assert "wrong-token" not in str(info.value)
    bad.close()


def test_oauth_discovers_cloud_id_and_uses_ex_prefix(oauth_client: JiraClient, recorder: RecordingTransport) -> None:
    assert oauth_client.myself()["accountId"]
    assert oauth_client.token_manager is not None and oauth_client.token_manager.current is not None
    assert oauth_client.token_manager.current.cloud_id == CLOUD_ID
    api_calls = [ex.url for ex in recorder.exchanges if "/rest/api/3/myself" in ex.url]
    assert api_calls and all(f"/ex/jira/{CLOUD_ID}/rest/api/3/" in url for url in api_calls)


def test_concurrent_401s_cause_one_refresh_and_old_token_is_rejected(
    sim: Sim, recorder: RecordingTransport, tmp_path: Path
) -> None:
    events: list[tuple[str, str]] = []

    class OrderedStore(FileTokenStore):
        def save(self, tokens: TokenSet) -> None:
            super().save(tokens)
            events.append(("save", f"Bearer {tokens.access_token}"))

    store = OrderedStore(tmp_path / "tokens.json")
    consent(sim, store, recorder).session.close()
    first = store.load()
    assert first is not None and first.refresh_token
    recorder.events = events
    client = JiraClient.from_connection(oauth_connection(sim), token_store=store, transport=recorder)
    client.myself()
    sim.clock(7200)  # the access token expires on the server; the client still believes it valid
    sim.control.delete("/_sim/requests")
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            barrier.wait()
            client.myself(refresh=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _token_calls(sim) == 1
    assert client.token_manager is not None and client.token_manager.refresh_count == 1
    rotated = FileTokenStore(tmp_path / "tokens.json").load()  # what a restart would read
    assert rotated is not None and rotated.refresh_token and rotated.refresh_token != first.refresh_token
    new_bearer = f"Bearer {rotated.access_token}"
    assert events.index(("save", new_bearer)) < events.index(("send", new_bearer))

    # The old refresh token was used once; a second use is refused.
    session = ApiSession(build_client(sim.url, FAST), system="jira", settings=FAST)
    stale = OAuthTokenManager(
        session=session,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        store=MemoryTokenStore(TokenSet("", first.refresh_token, 0.0)),
    )
    with pytest.raises(AuthError) as info:
        stale.renew(stale=None)
    assert "invalid_grant" in str(info.value) or "refresh token" in str(info.value).lower()
    assert first.refresh_token not in str(info.value)
    session.close()
    client.close()


def test_concurrent_expiry_causes_one_refresh(sim: Sim, recorder: RecordingTransport) -> None:
    store = MemoryTokenStore()
    consent(sim, store, recorder).session.close()
    client = JiraClient.from_connection(oauth_connection(sim), token_store=store, transport=recorder)
    client.myself()
    manager = client.token_manager
    assert manager is not None and manager.current is not None
    current = manager.current
    store.save(TokenSet(current.access_token, current.refresh_token, 0.0, cloud_id=current.cloud_id))
    client.close()
    # A client built on that store sees an expired token and must refresh proactively.
    client = JiraClient.from_connection(oauth_connection(sim), token_store=store, transport=recorder)
    sim.control.delete("/_sim/requests")
    barrier = threading.Barrier(5)

    def call() -> None:
        barrier.wait()
        client.myself(refresh=True)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _token_calls(sim) == 1
    client.close()


def test_revoked_grant_is_auth_error(sim: Sim, recorder: RecordingTransport) -> None:
    conn = oauth_connection(sim, refresh_token="never-issued")
    with pytest.raises(AuthError):
        JiraClient.from_connection(conn, transport=recorder)


def test_a_grant_rotated_by_another_process_is_adopted_not_reused(sim: Sim, recorder: RecordingTransport) -> None:
    """A CLI command beside the daemon rotates the refresh token in the shared store; the daemon must follow."""
    store = MemoryTokenStore()  # stands for the shared, encrypted credentials table
    consent(sim, store, recorder).session.close()
    daemon = JiraClient.from_connection(oauth_connection(sim), token_store=store, transport=recorder)
    daemon.myself()
    cli = JiraClient.from_connection(oauth_connection(sim), token_store=store, transport=recorder)
    assert cli.token_manager is not None and daemon.token_manager is not None
    cli.token_manager.renew(stale=cli.token_manager.current.access_token if cli.token_manager.current else None)
    rotated = cli.token_manager.current
    assert rotated is not None and daemon.token_manager.current is not None
    assert daemon.token_manager.current.refresh_token != rotated.refresh_token  # the daemon's copy is now stale
    daemon.token_manager.renew(stale=daemon.token_manager.current.access_token)
    used = daemon.token_manager.current
    assert used is not None and used.refresh_token == rotated.refresh_token  # adopted from the store, no 403
    daemon.myself(refresh=True)
    cli.close()
    daemon.close()
