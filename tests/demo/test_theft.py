"""The /theft page: a copied API token works without binding and is refused with DPoP."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from coatcheck.demo.theft import SECTIONS

from .conftest import MakeClient, register_and_login

_ROW = re.compile(r"<tr><td>(\w+)</td><td>(\w+)</td>.*?</td><td>(\d+)</td><td>([^<]*)</td>")


def _rows(client: TestClient) -> list[tuple[str, str, int, str]]:
    page = client.post("/theft", data={"section": "dpop"})
    assert page.status_code == 200
    return [(b, who, int(status), answer) for b, who, status, answer in _ROW.findall(page.text)]


@pytest.mark.parametrize("mode", ["session", "jwt", "hybrid"])
def test_the_theft_works_without_binding_and_fails_with_dpop(
    make_client: MakeClient, mode: str
) -> None:
    client = make_client(mode)
    register_and_login(client)
    rows = _rows(client)
    thefts = [(b, status, answer) for b, who, status, answer in rows if who == "thief"]
    unbound = [t for t in thefts if t[0] == "none"]
    bound = [t for t in thefts if t[0] == "DPoP"]
    assert unbound
    assert all(status == 200 for _, status, _ in unbound)  # the copy works
    assert {answer for _, _, answer in bound} <= {"dpop_binding_mismatch", "dpop_proof_replayed"}
    assert all(status in (400, 401) for _, status, _ in bound)
    assert len(bound) == (5 if mode == "hybrid" else 3)
    owner = [status for b, who, status, _ in rows if who == "owner"]
    assert owner == [200, 200, 200]
    # The demonstration's sessions are gone again: only the browser's own remains.
    if mode != "jwt":
        sessions = client.get("/sessions").text
        assert sessions.count("<tr") - 1 == 1


def test_with_binding_required_there_is_no_plain_token_to_steal(make_client: MakeClient) -> None:
    client = make_client("jwt", dpop_required=True)
    register_and_login(client)
    rows = _rows(client)
    assert rows
    assert {b for b, _, _, _ in rows} == {"DPoP"}


def test_guests_and_dpop_off_are_told_why(make_client: MakeClient) -> None:
    client = make_client("session")
    assert "Sign in first" in client.post("/theft", data={"section": "dpop"}).text
    client = make_client("session", dpop=False)
    register_and_login(client)
    assert "turned off" in client.post("/theft", data={"section": "dpop"}).text


def test_the_page_has_one_section_per_binding(make_client: MakeClient) -> None:
    client = make_client("session")
    page = client.get("/theft").text
    for section in SECTIONS:
        assert f'<section id="{section.key}">' in page
    assert client.post("/theft", data={"section": "nope"}).status_code == 200
