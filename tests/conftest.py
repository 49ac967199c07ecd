"""Test fixtures over real servers: the local stack (started if needed), a database cloned from a
migrated template per test, a unique MQTT topic root per test, and the back-office app served over
HTTP for the money loop's tests. Helpers shared by tests are in tests/support/."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings

from backoffice.config import Settings, load_settings
from backoffice.db import share_clock
from backoffice.migrate import migrate
from devtools.postgres import OWNER, owner_url
from devtools.stack import Stack
from paygo.web import create_app
from tests.support import serve
from tests.support.clock import pinned
from tests.support.money import SHORTCODE, WEBHOOK_SECRET

# Every property test explores the same examples on every run, so that make test never fails by chance;
# HYPOTHESIS_PROFILE=explore runs them with fresh random examples (and more of them).
hypothesis_settings.register_profile("make-test", derandomize=True)
hypothesis_settings.register_profile("explore", max_examples=1000)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "make-test"))

# One template per test session: two sessions on one stack (a developer and a helper) never share it.
TEMPLATE_DB = f"paygo_test_template_{os.getpid()}"


def _admin(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=settings.pg_port, user="paygo", dbname="postgres", autocommit=True)


@pytest.fixture(autouse=True)
def _platform_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    """``@pytest.mark.clock("2027-03-01T09:00:00+03:00")`` pins the platform's clock for the test (running
    on from there), before any other fixture of the test reads it or opens a connection."""
    mark = request.node.get_closest_marker("clock")
    if mark is None:
        yield
        return
    with pinned(*mark.args, **mark.kwargs):
        yield


@pytest.fixture(scope="session")
def base_settings() -> Iterator[Settings]:
    """The local stack, started for the test session if it was not running (and stopped after)."""
    settings = load_settings(environment="test")
    stack = Stack(settings)
    started = stack.up()
    with _admin(settings) as admin:
        admin.execute(f"drop database if exists {TEMPLATE_DB} with (force)")
        admin.execute(f"create database {TEMPLATE_DB} owner {OWNER}")
    template = settings.model_copy(update={"database_url": owner_url(settings, TEMPLATE_DB)})
    # Migrated as the owner role, as in production; the services log in as their own roles.
    with psycopg.connect(template.database_url, autocommit=True) as conn:
        migrate(conn)
    yield settings
    with _admin(settings) as admin:
        admin.execute(f"drop database if exists {TEMPLATE_DB} with (force)")
    stack.down(only=started)


@pytest.fixture
def settings(base_settings: Settings) -> Iterator[Settings]:
    """Settings pointing at a fresh database cloned from the migrated template (``database_url`` as its
    owner), and a topic root of its own."""
    name = f"paygo_test_{uuid.uuid4().hex[:12]}"
    with _admin(base_settings) as admin:
        admin.execute(f"create database {name} template {TEMPLATE_DB} strategy file_copy owner {OWNER}")
    yield base_settings.model_copy(
        update={
            # The owner's URL, for the tests' own rows; the app, ingest, workers and delivery given these
            # settings log in as their own roles (backoffice/db.py SERVICE_OF).
            "database_url": owner_url(base_settings, name),
            "mqtt_topic_root": f"test-{uuid.uuid4().hex[:8]}/paygo/v1/units",
        }
    )
    with _admin(base_settings) as admin:
        admin.execute(f"drop database if exists {name} with (force)")


@pytest.fixture
def conn(settings: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(settings.database_url) as c:
        share_clock(c)  # paygo_now() is the platform's clock (PAYGO_NOW, a pinned test)
        yield c


@pytest.fixture
def money_settings(settings: Settings) -> Settings:
    """Settings with our M-Pesa shortcode and the signed webhook's secret for provider "wing". The test
    payments are dated 2026-11-22 whatever today is: the time window that holds old payments is
    widened to years (the hostile tests narrow it again)."""
    return settings.model_copy(update={"mpesa_shortcodes": SHORTCODE, "webhook_secrets": {"wing": WEBHOOK_SECRET},
                                       "payment_time_window_hours": 24 * 365 * 20})  # fmt: skip


@pytest.fixture
def server(money_settings: Settings) -> Iterator[str]:
    """The back-office app served over real HTTP by uvicorn, in a thread of this test process."""
    with serve(create_app(money_settings)) as url:
        yield url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The generated inputs tried by schemathesis and hypothesis, per door (tests/support/fuzz.py)."""
    from tests.support.fuzz import tried

    if tried:
        terminalreporter.section("generated inputs tried")
        for what, n in sorted(tried.items()):
            terminalreporter.write_line(f"{n:>7,}  {what}")
        terminalreporter.write_line(f"{sum(tried.values()):>7,}  in all")
