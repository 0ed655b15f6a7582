"""The console's identity forms over HTTP (no browser), on both stores: customer service finds a
member by phone, replaces a lost card and merges a duplicate; each form needs the session's CSRF
token, and a double submit acts once."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from tests.chain import Chain
from tests.e2e.test_console import csrf_of, sign_in

pytestmark = pytest.mark.e2e
Client = TestClient[Any]


def test_service_finds_replaces_and_merges_through_the_forms(client: Client, chain: Chain) -> None:
    chain.standard()
    assert chain.enrol("M1", phone="13800138000").status_code == 201
    assert chain.enrol("D1", phone="13900000000").status_code == 201
    assert chain.sale("R1", member_id="M1").status_code == 201
    assert chain.sale("R2", member_id="D1").status_code == 201
    sign_in(client, chain.service())

    found = client.get("/console/members", params={"phone": "+86 138 0013 8000"})
    assert found.status_code == 200
    assert 'id="member-id">M1<' in found.text  # the only match is shown at once
    none = client.get("/console/members", params={"phone": "13700000000"})
    assert 'id="no-phone-match"' in none.text
    assert client.get("/console/members", params={"phone": "abc"}).status_code == 422

    form = {"_csrf": csrf_of(found.text), "new_member_id": "N1", "store_id": "S1", "reason": "lost"}
    for _ in range(2):  # a double submit replaces once
        done = client.post("/console/members/M1/replace-card", data=form)
        assert done.status_code == 200
        assert 'id="member-id">N1<' in done.text
    assert chain.member("N1")["points"] == 100
    old = client.get("/console/members", params={"card": "M1"})
    assert 'id="replaced-notice"' in old.text
    forged = client.post(
        "/console/members/N1/merge",
        data={"_csrf": "forged", "from_member_id": "D1", "reason": "dup"},
    )
    assert forged.status_code == 403

    merge = {"_csrf": csrf_of(old.text), "from_member_id": "D1", "reason": "one person"}
    for _ in range(2):  # a double submit merges once
        assert client.post("/console/members/N1/merge", data=merge).status_code == 200
    assert chain.member("N1")["points"] == 200
    merged = client.get("/console/members", params={"card": "D1"})
    assert 'id="merged-notice"' in merged.text
