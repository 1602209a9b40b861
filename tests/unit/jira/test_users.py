from __future__ import annotations

from typing import Any

from ml_connector.jira.users import UserResolver, choose_user


def _u(account: str, email: str | None, **extra: Any) -> dict[str, Any]:
    user: dict[str, Any] = {"accountId": account, "accountType": "atlassian", "active": True, "displayName": account}
    if email:
        user["emailAddress"] = email
    user.update(extra)
    return user


def test_choose_user_rules() -> None:
    assert choose_user("a@x.com", [_u("1", "A@x.com"), _u("2", "a@x.com.au")]).account_id == "1"
    assert choose_user("h@x.com", [_u("3", None)]).account_id == "3"  # hidden email, exact query, single hit
    assert choose_user("h@x.com", [_u("3", None), _u("4", None)]).status == "not_found"
    assert choose_user("a@x.com", [_u("1", "a@x.com"), _u("9", "a@x.com")]).status == "ambiguous"
    assert choose_user("a@x.com", [_u("1", "a@x.com", active=False)]).status == "not_found"
    assert choose_user("a@x.com", [_u("1", "a@x.com", accountType="app")]).status == "not_found"
    assert choose_user("nobody@x.com", []).status == "not_found"


def test_resolver_caches_hits_and_misses() -> None:
    calls: list[str] = []

    def search(query: str) -> list[dict[str, Any]]:
        calls.append(query)
        return [_u("1", "a@x.com")] if query == "a@x.com" else []

    clock = [0.0]
    resolver = UserResolver(search, ttl=100, clock=lambda: clock[0])
    assert resolver.resolve("a@x.com").account_id == "1"
    assert resolver.resolve(" A@X.com ").account_id == "1"
    assert resolver.resolve("none@x.com").status == "not_found"
    assert resolver.resolve("none@x.com").status == "not_found"
    assert calls == ["a@x.com", "none@x.com"]
    clock[0] = 101
    resolver.resolve("a@x.com")
    assert calls[-1] == "a@x.com" and len(calls) == 3
