"""The customer's page: the call centre edits the details and numbers (a bad number refused with the
reason, on the page), audited; finance only reads; the search page lists hits with what matched."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from backoffice.config import Settings
from devtools import demo_data
from paygo.web import create_app
from tests.support.staff import csrf_of, login, user


def test_the_call_centre_edits_a_customer_on_the_page(settings: Settings, conn: psycopg.Connection) -> None:
    demo_data.seed(conn, settings.secret_key, customers=2)
    conn.commit()
    cid, name = conn.execute("select id, name from customers order by id limit 1").fetchone()  # type: ignore[misc]
    user(settings.database_url, "cara", "call_centre")
    user(settings.database_url, "fin", "finance")
    form = {"name": name, "phones": "0712 345 678\n+255 754 123 456", "national_id": "ab 123", "village": "Voi",
            "district": "", "latitude": "-3.4", "longitude": "38.5", "language": "sw"}  # fmt: skip
    with TestClient(create_app(settings)) as browser:
        login(browser, "cara")  # type: ignore[arg-type]
        page = browser.get(f"/customers/{cid}")
        assert page.status_code == 200 and name in page.text
        bad = browser.post(f"/customers/{cid}", data={**form, "phones": "0712 345 678\n12",
                                                      "csrf_token": csrf_of(page.text)})  # fmt: skip
        assert bad.status_code == 422 and "&#39;12&#39; is not a phone number" in bad.text
        done = browser.post(f"/customers/{cid}", data={**form, "csrf_token": csrf_of(page.text)},
                            follow_redirects=False)  # fmt: skip
        assert done.status_code == 303
        found = browser.get("/search", params={"q": "0712345678"}, follow_redirects=False)
        assert found.status_code == 303 and found.headers["location"].startswith("/units/SHS")
    phones = conn.execute("select e164 from customer_phones where customer_id = %s order by position", (cid,))
    assert [p for (p,) in phones] == ["+254712345678", "+255754123456"]
    assert conn.execute("select national_id, village, language from customers where id = %s",
                        (cid,)).fetchone() == ("AB123", "Voi", "sw")  # fmt: skip
    assert conn.execute("select actor from audit_log where action = 'customer-updated'").fetchall() == [("cara",)]
    with TestClient(create_app(settings)) as browser:
        login(browser, "fin")  # type: ignore[arg-type]
        page = browser.get(f"/customers/{cid}")
        assert page.status_code == 200 and 'id="customer-form"' not in page.text
        assert browser.post(f"/customers/{cid}", data={**form, "csrf_token": csrf_of(page.text)}).status_code == 403
        listed = browser.get("/search", params={"q": name.split()[0]})
        assert listed.status_code == 200 and "name:" in listed.text
