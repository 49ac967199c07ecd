"""Stable ingest slots (ingest/slots.py): the broker sessions belong to a fixed set of slots leased in
PostgreSQL, so that workers scaled up and down or killed with -9 strand nothing."""

from __future__ import annotations

import psycopg
import pytest

from backoffice.config import Settings
from devtools.scale_drain import drain
from ingest import repository


def _holders(conn: psycopg.Connection) -> dict[str | None, list[int]]:
    out: dict[str | None, list[int]] = {}
    for lease in repository.slot_leases(conn):
        out.setdefault(lease.holder, []).append(lease.slot)
    return out


def test_leases_fair_shares_takeover_and_release(conn: psycopg.Connection) -> None:
    repository.ensure_slots(conn, 6)
    repository.ensure_slots(conn, 4)  # lowering the setting removes no slot (its session may hold messages)
    assert [lease.slot for lease in repository.slot_leases(conn)] == list(range(6))
    assert repository.heartbeat(conn, "a", 30) == (1, 6)
    assert repository.claim_slots(conn, "a", 6, 30) == list(range(6))
    assert repository.heartbeat(conn, "b", 30) == (2, 6)
    assert repository.claim_slots(conn, "b", 3, 30) == []  # every lease is live: nothing to take
    repository.release_slots(conn, "a", [3, 4, 5])  # a gives back what is above its fair share
    repository.release_slots(conn, "b", [0])  # not b's: nothing happens
    assert repository.claim_slots(conn, "b", 3, 30) == [3, 4, 5]
    assert _holders(conn) == {"a": [0, 1, 2], "b": [3, 4, 5]}
    # a stops renewing (killed): once its lease lapses, b takes its slots over
    conn.execute("update ingest_slots set lease_until = paygo_now() - interval '1 second' where holder = 'a'")
    assert repository.renew_slots(conn, "b", 30) == [3, 4, 5]
    assert repository.claim_slots(conn, "b", 6, 30) == [0, 1, 2]
    # a comes back under its id: the slots are b's now
    assert repository.renew_slots(conn, "a", 30) == []
    assert all(not lease.lapsed for lease in repository.slot_leases(conn))
    repository.leave(conn, "a")
    assert repository.heartbeat(conn, "b", 30) == (1, 6)


@pytest.mark.slow
def test_scaling_4_to_1_to_3_with_kill_9_in_a_backlog_loses_and_doubles_nothing(
    settings: Settings, conn: psycopg.Connection
) -> None:
    result = drain(settings, conn, readings=50_000, units=100, say=print, kill_at=0.1)  # noqa: T201 - the story in -s
    assert result.lost == 0 and result.duplicated == 0
    assert result.stored == result.distinct == result.daily_reports == 50_000
    assert result.rejects == 0
    assert any("killed w0, w1 (SIGKILL)" in p for p in result.phases)


def test_a_worker_lets_go_of_a_slot_taken_over_and_takes_it_back_once_free(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """Another worker holds slot 1 now (its lease in the table, its connection on the broker): the
    worker disconnects that slot and does not reconnect it (which would take the session back), and
    claims it again once it is free."""
    import time

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from tests.support import ingest_worker_thread, wait_for

    fast = settings.model_copy(update={"ingest_slots": 2, "ingest_lease_seconds": 1.5})
    with ingest_worker_thread(fast, "takeover") as worker:
        wait_for(lambda: worker.held_slots == [0, 1], timeout=30, what="the worker holding both slots")
        conn.execute("update ingest_slots set holder = 'other', lease_until = paygo_now() + interval '1 hour' "
                     "where slot = 1")  # fmt: skip
        conn.commit()
        other = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=worker.slot_client_id(1),
                            protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
        kicked: list[int] = []
        other.on_disconnect = lambda c, u, f, rc, p: kicked.append(getattr(rc, "value", -1))
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 5
        other.connect(fast.mqtt_host, fast.mqtt_port, clean_start=False, properties=props)
        other.loop_start()
        try:
            wait_for(lambda: worker.held_slots == [0], timeout=30, what="the worker letting slot 1 go")
            time.sleep(3 * fast.ingest_lease_seconds)  # two lease rounds: it must not come back for it
            assert worker.held_slots == [0] and kicked == [] and other.is_connected()
        finally:
            other.loop_stop()
            other.disconnect()
        conn.execute("update ingest_slots set holder = null, lease_until = '-infinity' where slot = 1")
        conn.commit()
        wait_for(lambda: worker.held_slots == [0, 1], timeout=30, what="the worker claiming slot 1 again")
