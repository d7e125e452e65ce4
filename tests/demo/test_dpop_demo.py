"""The demo's API with DPoP (on by default): bound logins, theft refused, refresh, nonces."""

from __future__ import annotations

import httpx
import pytest
from starlette.testclient import TestClient

from coatcheck.dpop_client import DPoPAuth
from coatcheck.tokens import Key
from coatcheck.tokens.dpop import make_proof

from .conftest import ALICE, MakeClient

MODES = ("session", "jwt", "hybrid")
CREDENTIALS = {"username": "alice", "password": ALICE["password"]}


def _login(client: TestClient, auth: DPoPAuth | None) -> dict[str, object]:
    client.post("/api/register", json=ALICE)
    response = client.post("/api/login", json=CREDENTIALS, auth=auth)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize("mode", MODES)
def test_a_login_with_a_proof_gets_a_bound_token_and_theft_fails(
    make_client: MakeClient, mode: str
) -> None:
    client = make_client(mode)
    auth = DPoPAuth()
    body = _login(client, auth)
    assert body["token_type"] == "DPoP"
    auth.access_token = str(body["token"])
    me = client.get("/api/me", auth=auth)
    assert me.status_code == 200
    assert (me.json()["via"], me.json()["dpop_jkt"]) == ("dpop", auth.thumbprint)

    # The token copied to another client, as a bearer token: refused (RFC 9449 §7.2).
    copied = client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert copied.status_code == 401
    assert copied.json()["error"] == "dpop_binding_mismatch"
    assert copied.headers["www-authenticate"].startswith('DPoP error="invalid_token"')
    # ... and with the thief's own key: refused too.
    thief = client.get("/api/me", auth=DPoPAuth(access_token=str(body["token"])))
    assert thief.status_code == 401
    assert thief.json()["error"] == "dpop_binding_mismatch"
    # ... and a captured request replayed as it was: refused.
    captured = client.build_request("GET", "/api/me")
    next(auth.auth_flow(captured))
    assert client.send(captured).status_code == 200
    replayed = client.send(captured)
    assert replayed.status_code == 401
    assert replayed.json()["error"] == "dpop_proof_replayed"
    assert 'error="invalid_dpop_proof"' in replayed.headers["www-authenticate"]


@pytest.mark.parametrize("mode", MODES)
def test_a_login_without_a_proof_stays_a_bearer_token(make_client: MakeClient, mode: str) -> None:
    client = make_client(mode)
    body = _login(client, None)
    assert body["token_type"] == "Bearer"
    me = client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert (me.status_code, me.json()["via"], me.json()["dpop_jkt"]) == (200, "bearer", None)


def test_a_bad_proof_at_login_is_a_400_before_the_password(make_client: MakeClient) -> None:
    client = make_client("jwt")
    client.post("/api/register", json=ALICE)
    proof = make_proof(Key.generate("ES256"), method="POST", url="http://elsewhere/api/login",
                       now=1.0)
    response = client.post(
        "/api/login", json={"username": "alice", "password": "wrong"}, headers={"DPoP": proof}
    )
    assert response.status_code == 400  # RFC 9449 §5: the token endpoint's error
    assert response.json()["error"] == "invalid_dpop_proof"
    assert "www-authenticate" not in response.headers


def test_nonces_are_followed_by_the_client(make_client: MakeClient) -> None:
    client = make_client("session", dpop_nonce=True)
    auth = DPoPAuth()
    sent: list[str] = []
    client.event_hooks["request"] = [lambda request: sent.append(request.url.path)]
    body = _login(client, auth)  # 400 use_dpop_nonce, then again with the nonce
    assert sent.count("/api/login") == 2
    auth.access_token = str(body["token"])
    sent.clear()
    assert client.get("/api/me", auth=auth).status_code == 200
    assert sent == ["/api/me"]  # the nonce from the login's answer was kept
    first = client.post("/api/login", json=CREDENTIALS, headers={
        "DPoP": make_proof(Key.generate("ES256"), method="POST",
                           url="http://127.0.0.1/api/login", now=client_now(client))})
    assert first.status_code == 400
    assert first.json()["error"] == "use_dpop_nonce"
    assert first.headers["dpop-nonce"]


def client_now(client: TestClient) -> float:
    return float(client.app.state.demo.config.clock.now())  # type: ignore[attr-defined]


def test_required_binding_refuses_plain_logins(make_client: MakeClient) -> None:
    client = make_client("jwt", dpop_required=True)
    client.post("/api/register", json=ALICE)
    response = client.post("/api/login", json=CREDENTIALS)
    assert response.status_code == 400
    assert response.json()["error"] == "dpop_required"
    assert _login(client, DPoPAuth())["token_type"] == "DPoP"


def test_dpop_can_be_turned_off(make_client: MakeClient) -> None:
    client = make_client("jwt", dpop=False)
    body = _login(client, DPoPAuth())
    assert body["token_type"] == "Bearer"


def test_behind_a_proxy_the_public_origin_is_what_proofs_name(make_client: MakeClient) -> None:
    client = make_client("jwt", public_origin="https://api.example.com")
    client.post("/api/register", json=ALICE)
    key = Key.generate("ES256")
    inside = make_proof(key, method="POST", url="http://127.0.0.1/api/login",
                        now=client_now(client))
    assert client.post("/api/login", json=CREDENTIALS, headers={"DPoP": inside}).status_code == 400
    public = make_proof(key, method="POST", url="https://api.example.com/api/login",
                        now=client_now(client))
    response = client.post("/api/login", json=CREDENTIALS, headers={"DPoP": public})
    assert response.json()["token_type"] == "DPoP"


def test_hybrid_refresh_needs_the_key(make_client: MakeClient) -> None:
    client = make_client("hybrid")
    auth = DPoPAuth()
    body = _login(client, auth)
    refresh = {"refresh_token": body["refresh_token"]}
    stolen = client.post("/api/refresh", json=refresh)
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "dpop_binding_mismatch"
    other = client.post("/api/refresh", json=refresh, auth=DPoPAuth())
    assert other.status_code == 400
    renewed = client.post("/api/refresh", json=refresh, auth=auth.for_token_requests())
    assert renewed.status_code == 200
    assert renewed.json()["token_type"] == "DPoP"


def test_the_oauth_token_endpoint_refreshes_bound_pairs(make_client: MakeClient) -> None:
    client = make_client("hybrid")
    auth = DPoPAuth()
    body = _login(client, auth)
    form = {"grant_type": "refresh_token", "refresh_token": str(body["refresh_token"])}
    stolen = client.post("/api/token", data=form, csrf=False)  # type: ignore[call-arg]
    assert stolen.status_code == 400
    renewed = client.post("/api/token", data=form, auth=auth, csrf=False)  # type: ignore[call-arg]
    assert renewed.status_code == 200, renewed.text
    answer = renewed.json()
    assert answer["token_type"] == "DPoP"
    assert set(answer) == {"access_token", "token_type", "refresh_token", "expires_in"}
    garbage = {**form, "refresh_token": "not-a-refresh-token"}
    bad = client.post("/api/token", data=garbage, auth=auth, csrf=False)  # type: ignore[call-arg]
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_grant")
    wrong = client.post("/api/token", data={"grant_type": "password"}, csrf=False)  # type: ignore[call-arg]
    assert (wrong.status_code, wrong.json()["error"]) == (400, "unsupported_grant_type")


def test_the_token_endpoint_is_hybrid_only(make_client: MakeClient) -> None:
    client = make_client("jwt")
    response = client.post("/api/token", data={"grant_type": "refresh_token"}, csrf=False)  # type: ignore[call-arg]
    assert response.status_code == 404


def test_dpop_logout_ends_a_bound_session(make_client: MakeClient) -> None:
    client = make_client("session")
    auth = DPoPAuth()
    auth.access_token = str(_login(client, auth)["token"])
    bearer = {"Authorization": f"Bearer {auth.access_token}"}
    assert client.post("/api/logout", headers=bearer).status_code == 401
    assert client.get("/api/me", auth=auth).status_code == 200
    assert client.post("/api/logout", auth=auth).status_code == 200
    gone = client.get("/api/me", auth=auth)
    assert (gone.status_code, gone.json()["error"]) == (401, "invalid_credentials")


def test_client_helper_works_with_an_async_client(make_client: MakeClient) -> None:
    client = make_client("jwt")
    client.post("/api/register", json=ALICE)
    app = client.app
    auth = DPoPAuth()

    async def flow() -> int:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as ac:
            answer = (await ac.post("/api/login", json=CREDENTIALS, auth=auth)).json()
            auth.access_token = answer["token"]
            return (await ac.get("/api/me", auth=auth)).status_code

    import anyio

    assert anyio.run(flow) == 200
