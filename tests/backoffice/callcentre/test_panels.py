"""Other domains' panels on the unit page: each ``UnitPanel`` of ``app.state.unit_panels`` is loaded with
the unit's id and its template renders the value as ``panel``."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from jinja2 import ChoiceLoader, DictLoader

from backoffice.config import Settings
from backoffice.templating import UnitPanel, templates
from devtools import demo_data
from paygo.web import create_app
from tests.support.staff import login, user


@pytest.fixture
def panel_template() -> Iterator[None]:
    """A panel's template as another domain would ship it under backoffice/templates/panels/."""
    loader = templates.env.loader
    assert loader is not None
    templates.env.loader = ChoiceLoader([DictLoader({"panels/test.html": '<p id="alerts">{{ panel.count }} open '
                                                     'alerts on unit #{{ panel.unit_id }}</p>'}), loader])  # fmt: skip
    templates.env.cache = {}  # type: ignore[assignment]
    yield
    templates.env.loader = loader
    templates.env.cache = {}  # type: ignore[assignment]


class Alerts:
    def __init__(self, unit_id: int) -> None:
        self.unit_id, self.count = unit_id, 2


def test_each_panel_is_loaded_for_the_unit_and_rendered(
    settings: Settings, conn: psycopg.Connection, panel_template: None
) -> None:
    demo_data.seed(conn, settings.secret_key, customers=2)
    conn.commit()
    serial, unit_id = conn.execute("select serial, id from units order by id limit 1").fetchone()  # type: ignore[misc]
    asked: list[int] = []

    def load(c: psycopg.Connection, unit: int) -> Alerts:
        asked.append(unit)
        return Alerts(unit)

    app = create_app(settings)
    assert app.state.unit_panels == []  # none by default
    app.state.unit_panels = [UnitPanel("Alerts", "panels/test.html", load)]
    user(settings.database_url, "cara", "call_centre")
    with TestClient(app) as browser:
        login(browser, "cara")  # type: ignore[arg-type]
        page = browser.get(f"/units/{serial}")
    assert page.status_code == 200 and asked == [unit_id]
    assert "<h2>Alerts</h2>" in page.text and f"2 open alerts on unit #{unit_id}" in page.text
