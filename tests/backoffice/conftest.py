"""Fixtures of the back-office tests."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from backoffice.config import Settings
from devtools import demo_data
from paygo.web import create_app
from tests.support.staff import api_token


@pytest.fixture
def demo_client(settings: Settings, conn: psycopg.Connection) -> Iterator[TestClient]:
    """The web app (in process) over a database seeded with the demo company's 12 customers, asked by
    an administrator's API token."""
    demo_data.seed(conn, settings.secret_key, customers=12)
    conn.commit()
    with TestClient(create_app(settings), headers=api_token(settings.database_url, "admin")) as c:
        yield c
