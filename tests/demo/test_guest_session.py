"""The demo's request.session: a guest's name and cart, through login, restarts and logout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import ALICE, MakeClient, register_and_login

MODES = ("session", "jwt", "hybrid")


def _cart(html: str) -> str:
    match = re.search(r"<p id=cart>(.*?)</p>", html)
    assert match is not None
    return match.group(1)


@pytest.mark.parametrize("mode", MODES)
def test_a_guest_is_greeted_by_name_and_keeps_a_cart_through_login(
    make_client: MakeClient, mode: str
) -> None:
    client = make_client(mode)
    home = client.get("/").text
    assert "<h1>Hello, guest</h1>" in home
    assert "Nothing yet" in home
    assert "coatcheck_data" not in client.cookies
    home = client.post("/name", data={"name": "  Zoë   <b>Q</b> "}).text  # redirected home
    assert "<h1>Hello, Zoë &lt;b&gt;Q&lt;/b&gt;</h1>" in home  # escaped, spaces folded
    assert "Nice to meet you" in home
    assert "Nice to meet you" not in client.get("/").text  # a flash shows once
    assert "a session token &lt;slot&gt;.&lt;secret&gt;" in home
    client.post("/cart/add", data={"item": "hat"})
    client.post("/cart/add", data={"item": "scarf"})
    assert _cart(client.get("/").text) == "hat, scarf"
    refused = client.post("/cart/add", data={"item": "<script>"})
    assert refused.status_code == 400
    register_and_login(client)
    home = client.get("/").text
    assert "<h1>Hello, Alice Example</h1>" in home
    assert _cart(home) == "hat, scarf"  # the cart survived the login
    client.post("/cart/add", data={"item": "gloves"})
    assert _cart(client.get("/").text) == "hat, scarf, gloves"
    client.post("/logout")
    home = client.get("/").text
    assert "<h1>Hello, guest</h1>" in home
    assert _cart(home) == "empty"  # logout drops the data


def test_the_name_survives_a_server_restart_on_sqlite(
    make_client: MakeClient, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'demo.db'}"
    first = make_client("session", store=store)
    first.post("/name", data={"name": "Zoë"})
    cookies = dict(first.cookies)
    assert "coatcheck_data" in cookies
    second = make_client("session", store=store)  # a new app: the server restarted
    for name, value in cookies.items():
        second.cookies.set(name, value)
    assert "<h1>Hello, Zoë</h1>" in second.get("/").text


def test_forgetting_the_name_and_emptying_the_cart_deletes_the_guest_session(
    make_client: MakeClient,
) -> None:
    client = make_client("session")
    client.post("/name", data={"name": "Zoë"})
    client.post("/cart/add", data={"item": "hat"})
    client.post("/cart/clear")
    assert "coatcheck_data" in client.cookies
    client.post("/name", data={"name": ""})
    assert "coatcheck_data" not in client.cookies
    assert "Nothing yet" in client.get("/").text
    assert ALICE["name"] not in client.get("/").text
