"""Moving OpenPAYGO Metrics units to another server: an administrator's audited action, sent (signed)
in the unit's next answer; the unit page's Metrics panel; outsiders refused."""

from __future__ import annotations

import json

import psycopg
from fastapi.testclient import TestClient
from openpaygo import MetricsRequestHandler

from backoffice import clock
from backoffice.config import Settings
from backoffice.devices.metrics import unit_panel
from backoffice.templating import templates
from ingest.device_api import create_device_app
from paygo.web import create_app
from protocol.openpaygo_metrics import DATA_FORMATS, verify_answer
from tests.support import count, lamp_contract
from tests.support.staff import api_token

NEW = "https://other-platform.example/metrics/"


def test_an_administrator_moves_a_unit_and_its_next_answer_says_it(
    settings: Settings, conn: psycopg.Connection
) -> None:
    _, key, _ = lamp_contract(conn, settings.secret_key, "MV-1", "Baraka", installed_days_ago=3)
    conn.commit()
    move = {"serials": ["MV-1", "NOPE-1"], "base_url": NEW}
    with TestClient(create_app(settings)) as staff_app:
        for headers, status in [({}, 401), (api_token(settings.database_url, "finance"), 403),
                                (api_token(settings.database_url, "field_agent"), 403)]:  # fmt: skip
            assert staff_app.post("/api/v1/metrics/move", json=move, headers=headers).status_code == status
        assert count(conn, "select count(*) from metrics_state") == 0  # the outsiders changed nothing
        bad = staff_app.post("/api/v1/metrics/move", json={"serials": ["MV-1"], "base_url": "ftp://x y"},
                             headers=api_token(settings.database_url, "admin"))  # fmt: skip
        assert bad.status_code == 422
        done = staff_app.post("/api/v1/metrics/move", json=move, headers=api_token(settings.database_url, "admin"))
    assert done.status_code == 200, done.text
    assert done.json() == {"moved": ["MV-1"], "unknown": ["NOPE-1"]}
    trail = conn.execute("select actor, action, before, after from audit_log where action = 'metrics.move'").fetchall()
    assert trail == [("token:test-admin", "metrics.move", {"base_url": None}, {"base_url": NEW})]
    unit_id = conn.execute("select id from units where serial = 'MV-1'").fetchone()[0]  # type: ignore[index]
    pending = unit_panel(conn, unit_id)
    assert pending is not None and pending.base_url == NEW and pending.base_url_sent_at is None
    conn.rollback()

    req = MetricsRequestHandler("MV-1", data_format=DATA_FORMATS[1], secret_key=key, auth_method="ra")
    req.set_request_count(1)
    req.set_timestamp(int(clock.utc_now().timestamp()))
    req.set_historical_data([{"batt_v": 12.4}])
    body = req.get_condensed_request_dict()
    with TestClient(create_device_app(settings)) as device_api:
        answer = device_api.post("/device_data", content=json.dumps(body))
    assert answer.status_code == 201, answer.text
    assert answer.json()["st"] == {"base_url": NEW}
    assert verify_answer(answer.json(), "MV-1", key, body)
    assert not verify_answer(answer.json() | {"st": {"base_url": "https://evil.example/"}}, "MV-1", key, body)

    panel = unit_panel(conn, unit_id)
    assert panel is not None and panel.base_url_sent_at is not None and panel.last_auth_method == "ra"
    assert panel.data_format_id == 1 and "batt_v" in panel.data_format_variables
    page = templates.get_template("panels/metrics.html").render(panel=panel)
    assert "recursive data (ra)" in page and NEW in page and "Battery voltage (V)" in page and "sent " in page


def test_extra_data_for_the_answers(settings: Settings, conn: psycopg.Connection) -> None:
    _, key, _ = lamp_contract(conn, settings.secret_key, "ED-1", "Imani", installed_days_ago=3)
    conn.commit()
    with TestClient(create_app(settings)) as staff_app:
        url = "/api/v1/metrics/extra_data"
        body = {"serials": ["ED-1"], "extra_data": {"sun_prevision_wsqm": "990"}}
        assert staff_app.post(url, json=body, headers=api_token(settings.database_url, "viewer")).status_code == 403
        admin = api_token(settings.database_url, "admin")
        for bad in ({"k": "a\x00b"}, {"k": [[[[[[1]]]]]]}):
            refused = staff_app.post(url, json={"serials": ["ED-1"], "extra_data": bad}, headers=admin)
            assert refused.status_code == 422, refused.text
        assert count(conn, "select count(*) from metrics_state") == 0
        assert staff_app.post(url, json=body, headers=admin).json() == {"moved": ["ED-1"], "unknown": []}
    assert count(conn, "select count(*) from audit_log where action = 'metrics.extra_data'") == 1
    req = MetricsRequestHandler("ED-1", data_format=DATA_FORMATS[1], secret_key=key, auth_method="ca")
    req.set_request_count(1)
    req.set_historical_data([{"batt_v": 12.4}])
    sent = req.get_simple_request_dict()
    with TestClient(create_device_app(settings)) as device_api:
        answer = device_api.post("/dd", content=json.dumps(sent))
    assert answer.status_code == 201 and answer.json()["extra_data"] == {"sun_prevision_wsqm": "990"}
    assert verify_answer(answer.json(), "ED-1", key, sent)
