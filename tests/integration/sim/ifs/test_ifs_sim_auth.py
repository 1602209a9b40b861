"""IAM: client-credentials tokens, discovery, and 401 for missing, unknown, expired and revoked tokens."""

from __future__ import annotations

import base64

import jwt

from .conftest import PO, TOKEN_FORM, TOKEN_PATH, Ifs


def test_token_endpoint_answers_keycloak_shaped_json(ifs: Ifs) -> None:
    response = ifs.http.post(
        TOKEN_PATH,
        data={
            "grant_type": "client_credentials",
            "client_id": "ml-connector",
            "client_secret": "sim-secret",
            "scope": "openid microprofile-jwt",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 180
    assert body["refresh_expires_in"] == 1800  # as IFS's documented answer says
    assert body["scope"] == "openid microprofile-jwt"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["azp"] == "ml-connector"
    assert claims["exp"] - claims["iat"] == 180
    assert claims["iss"] == f"{ifs.url}/auth/realms/mlc"


def test_client_secret_basic_is_accepted(ifs: Ifs) -> None:
    basic = base64.b64encode(b"ml-connector:sim-secret").decode()
    response = ifs.http.post(
        TOKEN_PATH, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert response.status_code == 200
    assert ifs.get(PO, {"$top": "1"}, token=response.json()["access_token"]).status_code == 200


def test_token_endpoint_refusals(ifs: Ifs) -> None:
    wrong_secret = ifs.http.post(
        TOKEN_PATH, data={"grant_type": "client_credentials", "client_id": "ml-connector", "client_secret": "x"}
    )
    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["error"] == "unauthorized_client"
    wrong_grant = ifs.http.post(
        TOKEN_PATH, data={"grant_type": "password", "client_id": "ml-connector", "client_secret": "sim-secret"}
    )
    assert wrong_grant.status_code == 400
    assert wrong_grant.json()["error"] == "unsupported_grant_type"
    wrong_realm = ifs.http.post(
        "/auth/realms/other/protocol/openid-connect/token",
        data={"grant_type": "client_credentials", "client_id": "ml-connector", "client_secret": "sim-secret"},
    )
    assert wrong_realm.status_code == 404
    not_a_form = ifs.http.post(TOKEN_PATH, json={"grant_type": "client_credentials"})
    assert not_a_form.status_code == 400


def test_openid_discovery_names_the_token_endpoint(ifs: Ifs) -> None:
    response = ifs.http.get("/auth/realms/mlc/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.json()["token_endpoint"] == f"{ifs.url}{TOKEN_PATH}"


def _assert_401(response: object, *, invalid_token: bool) -> None:
    assert getattr(response, "status_code") == 401  # noqa: B009
    headers = getattr(response, "headers")  # noqa: B009
    challenge = headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="mlc"')
    assert ('error="invalid_token"' in challenge) is invalid_token
    error = getattr(response, "json")()["error"]  # noqa: B009
    assert error["code"] and error["message"] and error["details"] == []


def test_missing_token_is_401_with_challenge(ifs: Ifs) -> None:
    response = ifs.http.get(f"/main/ifsapplications/projection/v1/{PO}")
    _assert_401(response, invalid_token=False)
    probe = ifs.http.get("/main/ifsapplications/projection/v1/")
    _assert_401(probe, invalid_token=False)
    metadata = ifs.http.get("/main/ifsapplications/projection/v1/PurchaseOrderHandling.svc/$metadata")
    _assert_401(metadata, invalid_token=False)


def test_unknown_token_is_401(ifs: Ifs) -> None:
    _assert_401(ifs.get(PO, token="not-a-token"), invalid_token=True)


def test_expired_token_is_401_after_the_clock_moves(ifs: Ifs) -> None:
    assert ifs.get(PO, {"$top": "1"}).status_code == 200
    ifs.sim.set_clock(179)
    assert ifs.get(PO, {"$top": "1"}).status_code == 200
    ifs.sim.set_clock(181)
    _assert_401(ifs.get(PO, {"$top": "1"}), invalid_token=True)
    fresh = ifs.login()
    assert ifs.get(PO, {"$top": "1"}, token=fresh).status_code == 200


def test_token_lifetime_fault_shortens_new_tokens(ifs: Ifs) -> None:
    ifs.http.put("/_sim/faults", json={"token_lifetime_seconds": 5})
    response = ifs.http.post(TOKEN_PATH, data=TOKEN_FORM)
    assert response.json()["expires_in"] == 5
    token = response.json()["access_token"]
    ifs.sim.set_clock(6)
    _assert_401(ifs.get(PO, {"$top": "1"}, token=token), invalid_token=True)


def test_revocation_invalidates_every_issued_token(ifs: Ifs) -> None:
    other = ifs.login()
    assert ifs.http.post("/_sim/tokens/revoke").json()["revoked"] >= 2
    _assert_401(ifs.get(PO, {"$top": "1"}), invalid_token=True)
    _assert_401(ifs.get(PO, {"$top": "1"}, token=other), invalid_token=True)
    assert ifs.get(PO, {"$top": "1"}, token=ifs.login()).status_code == 200
