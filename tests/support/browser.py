"""Driving Debian's chromium through Playwright for the page tests (never a browser download).

``chromium(site)`` opens a page that records every request leaving the site (assets must all be
served by the platform) and ``Steps`` saves a numbered screenshot of each step of a story under
``build/screenshots/<story>/`` (or ``$PAYGO_SCREENSHOTS``), kept after the run for people to look at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Page, Request, sync_playwright

from tests.support.staff import PASSWORD

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("PAYGO_SCREENSHOTS", "build/screenshots"))


@dataclass
class Steps:
    """Numbered screenshots of one story: ``steps.shot(page, "search by phone")``."""

    story: str
    taken: list[Path] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return SCREENSHOTS / _slug(self.story)

    def shot(self, page: Page, step: str) -> Path:
        if not self.taken:
            self.folder.mkdir(parents=True, exist_ok=True)
            for old in self.folder.glob("*.png"):
                old.unlink()
        path = self.folder / f"{len(self.taken) + 1:02d}-{_slug(step)}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


@dataclass
class Browsing:
    page: Page
    outside: list[str]  # requests that left the site: must stay empty


@contextmanager
def chromium(site: str, *, viewport: tuple[int, int] = (1280, 900)) -> Iterator[Browsing]:
    """A fresh chromium page; ``outside`` collects any request not to ``site`` (or a data: URL)."""
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})

            def watch(request: Request) -> None:
                if not request.url.startswith(site) and not request.url.startswith("data:"):
                    outside.append(request.url)

            page.on("request", watch)
            yield Browsing(page, outside)
        finally:
            browser.close()


def log_in(page: Page, site: str, name: str, password: str = PASSWORD, *, start: str = "/") -> None:
    """Open ``start``, which asks for a login first, and log in as ``name``."""
    page.goto(site + start)
    page.wait_for_url("**/login?next=*")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
