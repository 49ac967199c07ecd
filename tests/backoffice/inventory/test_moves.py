"""Units move through their lifecycle one step at a time, each step a stock move and an audit row; a
unit is never in two places (its one location row), and of two concurrent moves exactly one wins."""

from __future__ import annotations

import threading

import psycopg
import pytest

from backoffice.config import Settings
from backoffice.devices import repository as devices
from backoffice.inventory import repository, service
from tests.support.field import agent, lamp_product, main_warehouse, received, sold_lamp
from tests.support.staff import TEST_ACTOR


@pytest.fixture
def stocked(settings: Settings, conn: psycopg.Connection) -> tuple[int, int, int]:
    """A unit in stock at the warehouse and two agents: (unit id, agent a, agent b)."""
    lamp_product(conn)
    a = agent(conn, settings.database_url, "anna", "A1")
    b = agent(conn, settings.database_url, "ben", "B1")
    (unit_id,) = received(conn, settings.secret_key, "LMP000001")
    conn.commit()
    return unit_id, a.id, b.id


def test_a_unit_goes_round_its_lifecycle_with_a_move_and_an_audit_row_each_step(
    conn: psycopg.Connection, stocked: tuple[int, int, int]
) -> None:
    unit_id, a, _ = stocked
    customer = conn.execute("insert into customers (name) values ('Zawadi') returning id").fetchone()[0]  # type: ignore[index]
    steps = [
        ("assign_to_agent", {"agent_id": a}, "with_agent"),
        ("install", {"customer_id": customer}, "installed"),
        ("repossess", {"agent_id": a}, "repossessed"),
        ("return_to_warehouse", {}, "refurbishing"),
        ("refurbished", {}, "in_stock"),
    ]
    for action, where, state in steps:
        now = service.move_unit(conn, TEST_ACTOR, unit_id, action, **where)  # type: ignore[arg-type]
        assert now.state == state, action
    assert now.place == "stock" and now.location_id == main_warehouse(conn)
    moves = repository.moves_of_unit(conn, unit_id)
    assert [m.state_after for m in reversed(moves)] == [
        "in_stock",
        "with_agent",
        "installed",
        "repossessed",
        "refurbishing",
        "in_stock",
    ]
    actions = [r[0] for r in conn.execute("select action from audit_log where entity = 'unit' order by id")]
    assert actions == [
        "unit-received",
        "unit-assign-to-agent",
        "unit-install",
        "unit-repossess",
        "unit-return-to-warehouse",
        "unit-refurbished",
    ]


def test_a_move_the_lifecycle_does_not_allow_is_refused_and_changes_nothing(
    conn: psycopg.Connection, stocked: tuple[int, int, int]
) -> None:
    unit_id, a, _ = stocked
    with pytest.raises(service.MoveRefused, match="cannot be moved by repossess"):
        service.move_unit(conn, TEST_ACTOR, unit_id, "repossess", agent_id=a)
    with pytest.raises(service.MoveRefused, match="no agent 999"):
        service.move_unit(conn, TEST_ACTOR, unit_id, "assign_to_agent", agent_id=999)
    assert repository.current(conn, unit_id)[1] == "in_stock"  # type: ignore[index]
    assert conn.execute("select count(*) from stock_moves where unit_id = %s", (unit_id,)).fetchone() == (1,)


def test_the_database_refuses_a_second_place_for_a_unit(
    conn: psycopg.Connection, stocked: tuple[int, int, int]
) -> None:
    unit_id, _, _ = stocked
    with pytest.raises(psycopg.errors.UniqueViolation):
        repository.insert_unit_location(conn, unit_id, main_warehouse(conn))
    conn.rollback()
    with pytest.raises(psycopg.errors.CheckViolation):  # a place is exactly one of stock / customer / gone
        conn.execute("insert into customers (name) values ('Halima')")
        conn.execute(
            "update unit_locations set customer_id = (select min(id) from customers) where unit_id = %s", (unit_id,)
        )
    conn.rollback()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the history is append-only
        conn.execute("delete from stock_moves")


def test_of_two_concurrent_moves_of_one_unit_exactly_one_succeeds(
    settings: Settings, conn: psycopg.Connection, stocked: tuple[int, int, int]
) -> None:
    """Two real connections move the same unit to two agents. The first holds its move uncommitted; the
    second, having read the same place, blocks on the row; when the first commits, the second is
    refused with a clear reason and writes nothing."""
    unit_id, a, b = stocked
    results: dict[str, object] = {}
    first = psycopg.connect(settings.database_url)
    second = psycopg.connect(settings.database_url)
    second_pid = second.info.backend_pid
    try:
        first.execute("begin")
        service.move_unit(first, TEST_ACTOR, unit_id, "assign_to_agent", agent_id=a)

        def race() -> None:
            try:
                with second.transaction():
                    results["second"] = service.move_unit(second, TEST_ACTOR, unit_id, "assign_to_agent", agent_id=b)
            except service.MoveRefused as err:
                results["second"] = err

        thread = threading.Thread(target=race)
        thread.start()
        # Wait until the second mover is really blocked on the unit's row lock (not a timer).
        with psycopg.connect(settings.database_url, autocommit=True) as watcher:
            while not watcher.execute(
                "select wait_event_type = 'Lock' from pg_stat_activity where pid = %s", (second_pid,)
            ).fetchone()[0]:  # type: ignore[index]
                thread.join(0.01)
                assert thread.is_alive(), f"the second move did not wait: {results}"
        first.commit()
        thread.join()
    finally:
        first.close()
        second.close()
    assert isinstance(results["second"], service.MoveRefused)
    assert "moved by someone else" in str(results["second"])
    where = repository.unit_where(conn, unit_id)
    assert where is not None and where.state == "with_agent"
    assert where.location_id == repository.location_of_agent(conn, a).id  # type: ignore[union-attr]
    assert conn.execute("select count(*) from stock_moves where unit_id = %s", (unit_id,)).fetchone() == (2,)


def test_racing_threads_started_together_leave_exactly_one_winner(
    settings: Settings, conn: psycopg.Connection, stocked: tuple[int, int, int]
) -> None:
    unit_id, a, b = stocked
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def mover(agent_id: int) -> None:
        with psycopg.connect(settings.database_url) as c:
            barrier.wait()
            try:
                with c.transaction():
                    service.move_unit(c, TEST_ACTOR, unit_id, "assign_to_agent", agent_id=agent_id)
                outcomes.append("moved")
            except service.MoveRefused:
                outcomes.append("refused")

    threads = [threading.Thread(target=mover, args=(x,)) for x in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["moved", "refused", "refused", "refused"]
    assert conn.execute("select count(*) from stock_moves where unit_id = %s", (unit_id,)).fetchone() == (2,)


def test_parts_never_go_below_zero(conn: psycopg.Connection, stocked: tuple[int, int, int]) -> None:
    _, a, _ = stocked
    warehouse = main_warehouse(conn)
    service.add_parts(conn, TEST_ACTOR, "BAT-12V", 2, warehouse, name="Battery")
    loc = repository.location_of_agent(conn, a).id  # type: ignore[union-attr]
    with pytest.raises(service.MoveRefused, match="only 2 of BAT-12V there, not 3"):
        service.add_parts(conn, TEST_ACTOR, "BAT-12V", 3, loc, from_location_id=warehouse)
    service.add_parts(conn, TEST_ACTOR, "BAT-12V", 2, loc, from_location_id=warehouse)
    assert repository.part_quantity(conn, warehouse, "BAT-12V") == 0
    assert repository.part_quantity(conn, loc, "BAT-12V") == 2
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("update part_stock set quantity = -1 where location_id = %s", (loc,))


def test_a_written_off_unit_leaves_stock_and_the_broker(
    conn: psycopg.Connection, stocked: tuple[int, int, int]
) -> None:
    unit_id, _, _ = stocked
    conn.execute("update units set mqtt_password_hash = 'h' where id = %s", (unit_id,))
    assert [s for s, _ in devices.password_lines(conn)] == ["LMP000001"]
    gone = service.move_unit(conn, TEST_ACTOR, unit_id, "write_off", note="water damage")
    assert (gone.state, gone.place, gone.location_id) == ("written_off", "gone", None)
    assert devices.password_lines(conn) == []
    with pytest.raises(service.MoveRefused):
        service.move_unit(conn, TEST_ACTOR, unit_id, "refurbished")


def test_a_unit_under_an_active_contract_is_not_repossessed_by_a_stock_move(
    settings: Settings, conn: psycopg.Connection
) -> None:
    a = agent(conn, settings.database_url, "anna", "A1")
    contract_id, account, unit_id = sold_lamp(conn, settings.secret_key, a, "LMP000009", "Amina Odhiambo")
    conn.commit()
    with pytest.raises(service.MoveRefused, match=f"contract {account} is still active: end it first"):
        service.move_unit(conn, TEST_ACTOR, unit_id, "repossess", agent_id=a.id)
    conn.rollback()
    assert conn.execute("select state from contracts where id = %s", (contract_id,)).fetchone() == ("active",)
