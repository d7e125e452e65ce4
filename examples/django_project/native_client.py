"""A "native" client of the example project's API: what a mobile or desktop app does.

It never touches cookies: it obtains an access token and a refresh token with a
password, sends the access token as ``Authorization: Bearer``, trades the refresh token
for a new pair when the access token has expired (the old refresh token is retired:
rotation), and logs out by revoking. A refresh token used twice (stolen and replayed)
ends the whole session: once its successor has been used, coatcheck answers
``refresh_token_reused`` and revokes every token of that login.

    python native_client.py http://127.0.0.1:8000 alice 'correct horse battery'
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import httpx


class APIError(Exception):
    """An answer that is not a success: its status and coatcheck's stable code."""

    def __init__(self, status: int, code: str, detail: str = "") -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("code") or body.get("error") or "http_error"
    raise APIError(response.status_code, str(code), str(body.get("detail", "")))


@dataclass
class NativeClient:
    base_url: str
    http: httpx.Client = field(init=False)
    access: str | None = None
    refresh_token: str | None = None

    def __post_init__(self) -> None:
        # No cookie jar use: a native app holds its tokens itself (in the OS keychain).
        self.http = httpx.Client(base_url=self.base_url, timeout=10)

    def close(self) -> None:
        self.http.close()

    def login(self, username: str, password: str) -> dict[str, Any]:
        response = self.http.post("/api/token/", json={"username": username, "password": password})
        _raise_for(response)
        pair: dict[str, Any] = response.json()
        self.access, self.refresh_token = pair["access"], pair["refresh"]
        return pair

    def refresh(self) -> dict[str, Any]:
        """Trade the refresh token for a new pair (the old one is retired)."""
        response = self.http.post("/api/token/refresh/", json={"refresh": self.refresh_token})
        _raise_for(response)
        pair: dict[str, Any] = response.json()
        self.access, self.refresh_token = pair["access"], pair["refresh"]
        return pair

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the API; on a 401 (the access token expired), refresh once and try again.

        The 401 does not say whether the access token expired or was revoked (both are
        ``invalid_credentials``): the refresh tells, refused when the session is over.
        """
        response = self._send(method, path, **kwargs)
        if response.status_code == 401 and self.refresh_token is not None:
            self.refresh()
            response = self._send(method, path, **kwargs)
        _raise_for(response)
        return response.json()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.access}"} if self.access else {}
        return self.http.request(method, path, headers=headers, **kwargs)

    def logout(self) -> None:
        """Revoke: the session behind both tokens ends (access tokens too, at once)."""
        headers = {"Authorization": f"Bearer {self.access}"} if self.access else {}
        response = self.http.post(
            "/api/token/revoke/", json={"refresh": self.refresh_token}, headers=headers
        )
        _raise_for(response)
        self.access = self.refresh_token = None


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    base_url, username, password = argv
    client = NativeClient(base_url)
    try:
        client.login(username, password)
        print("me:", client.request("GET", "/api/me"))
        print("new note:", client.request("POST", "/api/notes", json={"text": "from the app"}))
        print("notes:", client.request("GET", "/api/notes"))
        stolen = client.refresh_token
        client.refresh()
        # The second rotation uses the first one's successor: from now on the token taken
        # above is known to be retired (until then it could be a lost answer, retried).
        client.refresh()
        print("refreshed twice: a new pair each time, the old refresh tokens retired")
        thief = NativeClient(base_url)
        thief.refresh_token = stolen
        try:
            thief.refresh()
        except APIError as exc:
            print("the retired token replayed:", exc.code)
        finally:
            thief.close()
        try:
            client.request("GET", "/api/me")
        except APIError as exc:
            print("and the session it belonged to is over:", exc.code)
        client.login(username, password)
        client.logout()
        print("logged out")
        return 0
    finally:
        client.close()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
