"""Every route of an app, as the server will match them (FastAPI includes routers lazily, so the
routers' own routes are read through the included router's effective routes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount


@dataclass(frozen=True)
class RouteInfo:
    path: str
    methods: frozenset[str]
    guards: tuple[Any, ...]  # the route's declared dependencies (its router's and its own)


def app_routes(app: FastAPI) -> tuple[list[RouteInfo], list[str]]:
    """(the API routes, the paths of mounted sub-applications)."""
    routes: list[RouteInfo] = []
    mounts: list[str] = []
    for route in app.routes:
        if hasattr(route, "effective_route_contexts"):
            for ctx in route.effective_route_contexts():
                deps = tuple(d.dependency for d in ctx.dependencies)
                routes.append(RouteInfo(ctx.path, frozenset(ctx.methods or ()), deps))
        elif isinstance(route, APIRoute):
            routes.append(
                RouteInfo(route.path, frozenset(route.methods), tuple(d.dependency for d in route.dependencies))
            )
        elif isinstance(route, Mount):
            mounts.append(route.path)
        else:
            routes.append(RouteInfo(getattr(route, "path", repr(route)), frozenset(), ()))
    return routes, mounts
