from datetime import UTC, datetime, timedelta

import psycopg

from backoffice import clock
from backoffice.migrate import available, migrate
from backoffice.registry import repository, service
from ingest import writer


def test_migrations_are_recorded_and_safe_to_rerun(settings) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        assert migrate(conn) == []  # the template was migrated already
        versions = [v for (v,) in conn.execute("select version from schema_migrations order by version")]
    assert versions == [m.version for m in available()]


def _unit(conn: psycopg.Connection) -> int:
    product = repository.insert_product(
        conn, code="P", name="p", business_model="flexible", currency="KES", price_per_day=3500
    )
    return service.register_unit(conn, "k", "SER1", product, installed_at=datetime(2020, 1, 1, tzinfo=UTC))


def test_a_reading_outside_every_partition_lands_and_moves_later(conn: psycopg.Connection) -> None:
    unit_id = _unit(conn)
    far = datetime(2021, 3, 3, 12, tzinfo=UTC)  # years before the partitions created by the migration
    row = (
        unit_id,
        far,
        1,
        clock.utc_now(),
        12.5,
        None,
        0.5,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    )
    assert writer.write_readings(conn, [row]) == 1
    assert conn.execute("select count(*) from telemetry_default").fetchone() == (1,)
    assert writer.ensure_partitions(conn, far - timedelta(days=7), far + timedelta(days=7)) >= 1
    assert conn.execute("select count(*) from telemetry_default").fetchone() == (0,)
    assert conn.execute("select count(*) from telemetry where ts = %s", (far,)).fetchone() == (1,)
    # Running the maintenance again creates nothing new.
    assert writer.ensure_partitions(conn, far - timedelta(days=7), far + timedelta(days=7)) == 0
