"""Delivery of a paid token: by SMS and as an MQTT command to the unit, closed by its acknowledgement."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from backoffice import clock
from backoffice.config import Settings
from backoffice.delivery.dispatcher import DevSmsGateway, dispatch_once, handle_ack
from backoffice.delivery.main import MqttLink
from protocol import topic
from tests.support import Subacks, wait_for
from tests.support.money import MONEY_NOW, Device, confirmation, make_accounts, make_products

pytestmark = pytest.mark.clock(MONEY_NOW)


@pytest.mark.clock("2026-11-22T09:38:45+03:00")  # when the confirmation says it was paid
def test_mpesa_confirmation_to_unlocked_device_over_mqtt_and_sms(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    settings = money_settings
    _, flexible = make_products(conn)
    acct = make_accounts(conn, settings, flexible, 1, "LMP")[0]

    # 500 KES deposit (7 days) + 350 KES at 35 KES/day (10 days) + 20 KES kept for later.
    reply = httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "870.00"))
    assert reply.json() == {"ResultCode": 0, "ResultDesc": "Success"}

    # The unit's side: subscribed to its command topic on the real broker, acknowledging.
    received: list[dict[str, object]] = []
    device_client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{acct.serial}",
                                protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        command = json.loads(msg.payload)
        received.append(command)
        ack = json.dumps({"outbox_id": command["outbox_id"]})
        client.publish(topic(acct.serial, "cmd/ack", settings.mqtt_topic_root), ack, qos=1)

    device_client.on_message = on_message
    device_subscribed = Subacks(device_client)
    device_client.connect("127.0.0.1", settings.mqtt_port)
    device_client.subscribe(topic(acct.serial, "cmd", settings.mqtt_topic_root), qos=1)
    device_client.loop_start()
    link = MqttLink(settings, f"delivery-test-{uuid.uuid4().hex[:6]}")
    link_subscribed = Subacks(link.client)  # the link subscribes to the acks when it connects
    link.start()
    try:
        device_subscribed.wait(what="the unit's SUBACK for its commands")
        link_subscribed.wait(what="the delivery link's SUBACK for the acks")
        conn.autocommit = True
        with conn.transaction():
            assert dispatch_once(conn, DevSmsGateway(), link.publish) == 2  # one SMS, one command
        wait_for(lambda: len(received) == 1 and not link.acks.empty(), timeout=10, what="the command and its ack")
        serial, payload = link.acks.get()
        with conn.transaction():
            assert handle_ack(conn, serial, payload)
    finally:
        link.stop()
        device_client.loop_stop()
        device_client.disconnect()

    device = Device(acct)
    assert device.enter(str(received[0]["token"]))
    assert device.days == 17  # exactly what was paid for
    sms = conn.execute("select to_number, body from sms_messages").fetchall()
    token = str(received[0]["token"])  # the one the device decoded to 17 days
    spaced = f"{token[:3]} {token[3:6]} {token[6:]}"
    # One SMS, to the phone the customer registered, saying what the device was given.
    # The 17 days count from the token, issued today (docs/credit_end.md).
    light_until = clock.today() + timedelta(days=17)
    expected_sms = (f"Payment of 870.00 KES received, thank you. Token {spaced} adds 17 days: light until "
                    f"{light_until.isoformat()}. Account {acct.number}.")  # fmt: skip
    assert sms == [(acct.phone, expected_sms)] and spaced in sms[0][1]
    states = dict(conn.execute("select channel, state from outbox").fetchall())
    assert states == {"sms": "acked", "mqtt": "acked"}
    paid, granted = conn.execute(
        "select paid_total, days_granted from contracts where id = %s", (acct.contract_id,)
    ).fetchone() or (0, 0)
    assert (paid, granted) == (87_000, 17)  # the 20 KES remainder is kept in the balance

    # The next 15 KES completes a day with the kept 20 KES: one more day, nothing lost.
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "15"))
    tokens = conn.execute("select token, value_days from tokens order by count").fetchall()
    assert [d for _, d in tokens] == [17, 1]
    assert device.enter(tokens[1][0]) and device.days == 18
    ledger = conn.execute(
        "select type, amount from ledger_entries where contract_id = %s and status = 'completed' order by id",
        (acct.contract_id,),
    ).fetchall()
    assert ledger == [("deposit", 50_000), ("payment", 37_000), ("payment", 1_500)]
