"""API tokens under an outside probe (issue 22 finding 3), over real HTTP and the real database: a token
made by another token answers to the same person, and disabling that person stops every token in the
chain, including one minted after the token that made it."""

from __future__ import annotations

import httpx
import psycopg

from backoffice.staff import service
from tests.support.staff import TEST_ACTOR, csrf_of, login, user


def test_disabling_the_admin_stops_every_token_in_the_chain(server: str, conn: psycopg.Connection) -> None:
    user(conn.info.dsn, "ada", "admin")
    with httpx.Client(base_url=server) as browser:
        assert login(browser, "ada").status_code in (200, 303)
        csrf = csrf_of(browser.get("/tickets").text)
        first = browser.post("/api/tokens", json={"name": "erp", "roles": ["admin"]}, headers={"X-CSRF-Token": csrf})
        assert first.status_code == 201, first.text
    parent = {"Authorization": f"Bearer {first.json()['token']}"}
    with httpx.Client(base_url=server, headers=parent) as erp:
        child = erp.post("/api/tokens", json={"name": "erp-child", "roles": ["admin"]})
        assert child.status_code == 201, child.text
    grandchild_headers = {"Authorization": f"Bearer {child.json()['token']}"}
    with httpx.Client(base_url=server, headers=grandchild_headers) as c:
        grandchild = c.post("/api/tokens", json={"name": "erp-grandchild", "roles": ["admin"]})
        assert grandchild.status_code == 201, grandchild.text
    chain = [first.json()["token"], child.json()["token"], grandchild.json()["token"]]
    for token in chain:
        assert httpx.get(f"{server}/api/tokens", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    with conn.transaction():
        service.set_disabled(conn, "ada", True, TEST_ACTOR)
    for token in chain:
        reply = httpx.get(f"{server}/api/tokens", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 401, (token[:8], reply.status_code)
        minted = httpx.post(f"{server}/api/tokens", json={"name": "again", "roles": ["admin"]},
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert minted.status_code == 401
    assert conn.execute("select count(*) from api_tokens").fetchone() == (3,)
    owners = conn.execute("select distinct s.username from api_tokens t join staff_users s on s.id = t.owner_user_id")
    assert owners.fetchall() == [("ada",)]
