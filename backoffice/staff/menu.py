"""The top menu: ONE declarative list of (label, path). Who sees an entry is never written here: it is read
from the rule (``Allow(...)``) that the page's own GET route declares, when the app is built, so the menu
and the guard cannot drift apart. A page joins the menu by one line in ``MENU`` (docs/pages_lists.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from backoffice.staff.schemas import Staff


@dataclass(frozen=True)
class Link:
    """One entry of the menu. ``holders_only``: shown only to those who hold one of the page's roles
    themselves (an administrator may open a field agent's own page, but has no such page)."""

    label: str
    path: str
    holders_only: bool = False


# The menu, in the order shown. Add a page here (its GET route's Allow(...) decides who sees it).
MENU: tuple[Link, ...] = (
    Link("Units", "/"),
    Link("My page", "/agents/me", holders_only=True),
    Link("Tickets", "/tickets"),
    Link("Payments", "/payments"),
    Link("Money waiting", "/payments/waiting"),
    Link("Enter payment", "/payments/manual"),
    Link("Import statement", "/payments/statement"),
    Link("MoMo request", "/payments/momo"),
    Link("New customer", "/customers/new"),
    Link("New sale", "/sales/new"),
    Link("End a contract", "/contracts/end"),
    Link("KPIs", "/kpi"),
    Link("Inventory", "/inventory"),
    Link("Agents", "/agents"),
    Link("New agent", "/agents/new"),
    Link("Commission rules", "/commission-rules"),
    Link("Fleet health", "/fleet-health"),
    Link("Staff", "/staff"),
    Link("Audit", "/audit"),
    Link("API schema", "/openapi.json"),
)


@dataclass(frozen=True)
class Entry:
    label: str
    path: str
    roles: frozenset[str]  # the roles of the page's Allow(...) (administrators always may)
    holders_only: bool = False

    def shown_to(self, staff: Staff) -> bool:
        if self.holders_only:
            return bool(staff.roles & self.roles)
        return staff.holds(self.roles)


class MenuError(RuntimeError):
    """A menu path that is no GET route of the app, or whose route declares no ``Allow`` rule."""


def _route_rules(app: FastAPI) -> dict[str, frozenset[str]]:
    """The GET paths of the app's routes, each with the roles its ``Allow`` rule names."""
    rules: dict[str, frozenset[str]] = {}

    def add(path: str, methods: Iterable[str], dependencies: Sequence[Any]) -> None:
        if "GET" not in methods:
            return
        for dep in dependencies:
            roles = getattr(dep.dependency, "roles", None)  # backoffice.staff.guard.Allow
            if isinstance(roles, frozenset):
                rules[path] = roles

    for route in app.routes:
        if hasattr(route, "effective_route_contexts"):  # an included router (FastAPI includes them lazily)
            for ctx in route.effective_route_contexts():
                add(ctx.path, ctx.methods or set(), ctx.dependencies)
        elif isinstance(route, APIRoute):
            add(route.path, route.methods or set(), route.dependencies)
    return rules


class Menu:
    """The menu of one app: ``for_staff(staff)`` the entries they may open, ``home(staff)`` where they land."""

    def __init__(self, entries: Sequence[Entry], rules: dict[str, frozenset[str]]) -> None:
        self.entries = tuple(entries)
        self._rules = rules

    def for_staff(self, staff: Staff | None) -> list[Entry]:
        return [] if staff is None else [e for e in self.entries if e.shown_to(staff)]

    def may_open(self, staff: Staff | None, path: str) -> bool:
        """Whether ``staff`` may open the page at ``path`` (a GET route without parameters)."""
        roles = self._rules.get(path)
        return staff is not None and roles is not None and staff.holds(roles)

    def home(self, staff: Staff) -> str:
        """The first page of the menu that ``staff`` may open (the units list for most; a field agent's own
        page for a field agent)."""
        for entry in self.for_staff(staff):
            if entry.path != "/openapi.json":
                return entry.path
        return "/account/password"


def build(app: FastAPI, links: Sequence[Link] = MENU) -> Menu:
    """The menu of ``app``: each link's roles from its GET route's rule. A link to no route, or to a route
    without ``Allow``, stops the app from starting (so a typo cannot ship)."""
    rules = _route_rules(app)
    entries = []
    for link in links:
        if link.path not in rules:
            raise MenuError(f"menu entry {link.label!r}: {link.path} is no GET route with an Allow(...) rule")
        entries.append(Entry(link.label, link.path, rules[link.path], link.holders_only))
    return Menu(entries, rules)


def install(app: FastAPI) -> Menu:
    """Build the menu once all routers are included; pages read it as ``request.app.state.menu``."""
    app.state.menu = build(app)
    return app.state.menu
