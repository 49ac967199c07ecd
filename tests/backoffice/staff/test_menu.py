"""The top menu shows each role exactly the pages it may open: every link opens (200) for that role, no
page the role may open is missing, the roles are read from the routes' own rules (so menu and guard cannot
drift), a field agent lands on their own page, and a refusal's links are pages the user may open."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from backoffice.config import Settings
from backoffice.staff import menu
from backoffice.staff.guard import Allow
from backoffice.staff.schemas import ROLES
from devtools import demo_data
from paygo.web import create_app
from tests.support import serve
from tests.support.field import agent
from tests.support.routes import app_routes
from tests.support.staff import login, user

# Pages reached otherwise than by the menu: the login page, the password form (linked beside the name),
# the search results (the search box in the header).
NOT_IN_MENU = {"/login", "/account/password", "/search"}
NAV = re.compile(r"<nav>(.*?)</nav>", re.S)
HREF = re.compile(r'href="([^"#]+)"')


@pytest.fixture
def site(settings: Settings, conn: psycopg.Connection) -> Iterator[str]:
    demo_data.seed(conn, settings.secret_key, customers=3)
    agent(conn, settings.database_url, "fiona", "F1")  # a field agent with a page of their own
    conn.commit()
    for role in ROLES:
        if role != "field_agent":
            user(settings.database_url, f"menu-{role}", role)
    with serve(create_app(settings)) as url:
        yield url


def _login_name(role: str) -> str:
    return "fiona" if role == "field_agent" else f"menu-{role}"


def _menu_links(page: str) -> list[str]:
    found = NAV.search(page)
    assert found, "no <nav> on the page"
    return HREF.findall(found.group(1))


def _pages_allowed(settings: Settings, role: str) -> set[str]:
    """The GET pages without parameters that ``role`` may open, by the routes' own rules."""
    routes, _ = app_routes(create_app(settings))
    allowed = set()
    for r in routes:
        if "GET" not in r.methods or "{" in r.path or r.path.startswith("/api/") or r.path in NOT_IN_MENU:
            continue
        rule = next((g for g in r.guards if isinstance(g, Allow)), None)
        if rule is not None and (role == "admin" or role in rule.roles):
            allowed.add(r.path)
    return allowed


@pytest.mark.parametrize("role", ROLES)
def test_each_roles_menu_opens_every_link_and_misses_no_page(settings: Settings, site: str, role: str) -> None:
    with httpx.Client(base_url=site, follow_redirects=True) as web:
        landed = login(web, _login_name(role))
        assert landed.status_code == 200, (role, landed.url, landed.status_code)
        links = _menu_links(landed.text)
        for path in links:
            reply = web.get(path)
            assert reply.status_code == 200, f"{role}: the menu's {path} answers {reply.status_code}"
    expected = _pages_allowed(settings, role)
    if role == "admin":
        expected.discard("/agents/me")  # an administrator may open it, but is no agent: no such page of theirs
    assert set(links) == expected, f"{role}: menu {sorted(links)} but may open {sorted(expected)}"
    assert len(links) == len(set(links))


def test_the_viewer_and_call_centre_are_not_offered_pages_they_may_not_open(site: str) -> None:
    with httpx.Client(base_url=site, follow_redirects=True) as web:
        viewer = _menu_links(login(web, "menu-viewer").text)
    with httpx.Client(base_url=site, follow_redirects=True) as web:
        call_centre = _menu_links(login(web, "menu-call_centre").text)
    assert "/payments" not in viewer and "/kpi" in viewer  # the "viewer → Payments"
    assert "/kpi" not in call_centre and "/payments" in call_centre  # and "call centre → KPIs"


def test_a_field_agent_lands_on_their_own_page_and_a_refusals_links_all_open(site: str) -> None:
    with httpx.Client(base_url=site, follow_redirects=True) as web:
        landed = login(web, "fiona")
        assert landed.status_code == 200 and landed.url.path == "/agents/me"
        assert web.get("/").url.path == "/agents/me"  # the front door sends them to their page
        refused = web.get("/kpi")
        assert refused.status_code == 403 and "Not for your role" in refused.text
        links = [h for h in HREF.findall(refused.text) if not h.startswith("/static/")]
        assert links and "/kpi" not in links
        for path in links:
            assert web.get(path).status_code == 200, path


def test_the_menus_roles_are_the_routes_rules_and_a_wrong_path_stops_the_app(settings: Settings) -> None:
    app = create_app(settings)
    routes, _ = app_routes(app)
    rules = {r.path: next(g for g in r.guards if isinstance(g, Allow)).roles for r in routes if "GET" in r.methods
             and any(isinstance(g, Allow) for g in r.guards)}  # fmt: skip
    built = app.state.menu
    assert [e.path for e in built.entries] == [link.path for link in menu.MENU]
    for entry in built.entries:
        assert entry.roles == rules[entry.path], entry
    with pytest.raises(menu.MenuError, match="/no-such-page"):
        menu.build(app, [*menu.MENU, menu.Link("Nowhere", "/no-such-page")])
    with pytest.raises(menu.MenuError, match="/login"):  # a public page has no roles to show it by
        menu.build(app, [menu.Link("Log in", "/login")])
