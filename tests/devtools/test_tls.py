"""TLS on the outside doors (PAYGO_TLS=1): the broker's device listener and nginx in front of the web
app and the device API present the certificate of ``paygo tls init``; verifying clients (paho and
httpx with the CA) get through, clients that do not trust the CA, or speak plain text, do not."""

from __future__ import annotations

import os
import queue
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

import protocol
from backoffice.config import Settings
from backoffice.devices.service import mosquitto_hash
from devtools import tls
from devtools.install import ensure_installed, missing_packages
from devtools.mosquitto import Mosquitto
from devtools.nginx import HSTS, Nginx
from ingest.device_api import create_device_app
from paygo.web import create_app
from tests.support import Subacks, free_port, serve, wait_for
from tests.support.wait import wait_for_port

SERIAL = "TLS0001"
PASSWORD = "a-unit-password"


def _ports(n: int) -> list[int]:
    """Free ports; from PAYGO_TEST_PORT_BASE upwards when set (a shared machine's own range)."""
    base = int(os.environ.get("PAYGO_TEST_PORT_BASE", "0"))
    if not base:
        return [free_port() for _ in range(n)]
    import socket

    out: list[int] = []
    port = base
    while len(out) < n:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                out.append(port)
            except OSError:
                pass
        port += 1
    return out


@pytest.fixture
def tls_stack(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A broker and nginx of their own with TLS on, in front of the web app and the device API."""
    ensure_installed(missing_packages(tls=True))  # nginx, as `paygo stack up` does with PAYGO_TLS=1
    mqtt_port, device_port, https_port, device_https_port = _ports(4)
    written = tls.init(tmp_path / "tls", devices=[SERIAL])
    assert len(written) == 6
    with serve(create_app(settings), "the web app") as api, serve(create_device_app(settings), "the device API") as dev:
        s = settings.model_copy(update={
            "tls": True, "home": tmp_path / "home", "tls_dir": tmp_path / "tls", "mqtt_port": mqtt_port,
            "device_mqtt_port": device_port, "https_port": https_port, "device_https_port": device_https_port,
            "api_port": int(api.rsplit(":", 1)[1]), "device_api_port": int(dev.rsplit(":", 1)[1]),
            "broker_password_file": None, "broker_pid_file": None})  # fmt: skip
        broker, nginx = Mosquitto(s), Nginx(s)
        s.device_password_file.parent.mkdir(parents=True, exist_ok=True)
        s.device_password_file.write_text(f"{SERIAL}:{mosquitto_hash(PASSWORD)}\n")
        try:
            broker.up()
            nginx.up()
            wait_for_port(device_https_port, timeout=30, what="nginx")
            yield s
        finally:
            nginx.down()
            broker.down()


def _device(s: Settings, context: ssl.SSLContext | None) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=SERIAL, protocol=MQTTProtocolVersion.MQTTv5)
    c.username_pw_set(SERIAL, PASSWORD)
    if context is not None:
        c.tls_set_context(context)
    return c


def test_certificates_chain_to_the_ca(tmp_path: Path) -> None:
    files = tls.TlsFiles(tmp_path)
    tls.init(tmp_path, hosts=["mqtt.example.com", "10.0.0.5"], devices=["SHS1"])
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    device = x509.load_pem_x509_certificate(files.device_cert("SHS1").read_bytes())
    for leaf in (server, device):
        leaf.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mqtt.example.com"]
    assert device.subject.rfc4514_string().startswith("CN=SHS1")
    assert oct(files.ca_key.stat().st_mode & 0o777) == "0o600"
    assert tls.init(tmp_path) == []  # nothing missing: nothing made again


@pytest.mark.slow
def test_verifying_clients_reach_every_door_over_tls(tls_stack: Settings) -> None:
    s = tls_stack
    files = tls.TlsFiles(tls.tls_dir(s))

    # HTTPS: the web app and the device API behind nginx, HSTS on every answer.
    with httpx.Client(verify=ssl.create_default_context(cafile=str(files.ca_cert)), timeout=30) as web:
        for port, path in ((s.https_port, "/ready"), (s.https_port, "/health"), (s.device_https_port, "/ready")):
            for host in ("127.0.0.1", "localhost"):
                answer = web.get(f"https://{host}:{port}{path}")
                assert answer.status_code == 200, (port, path, answer.text)
                assert answer.headers["strict-transport-security"] == HSTS
        assert web.get(f"https://127.0.0.1:{s.https_port}/api/units").status_code == 401  # still asks for a login
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"), httpx.Client() as untrusting:
        untrusting.get(f"https://127.0.0.1:{s.https_port}/health")  # the system's CAs do not know ours

    # MQTT: a unit logs in over TLS (verifying the broker, with its own client certificate) and what
    # it publishes reaches the services listener.
    got: queue.Queue[bytes] = queue.Queue()
    service = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    subacks = Subacks(service)
    service.on_message = lambda c, u, m: got.put(m.payload)
    service.connect("127.0.0.1", s.mqtt_port)
    service.loop_start()
    service.subscribe(protocol.topic(SERIAL, "status", s.mqtt_topic_root), qos=1)
    subacks.wait()
    context = ssl.create_default_context(cafile=str(files.ca_cert))
    context.load_cert_chain(files.device_cert(SERIAL), files.device_key(SERIAL))
    unit = _device(s, context)
    try:
        unit.connect("localhost", s.device_mqtt_port)
        unit.loop_start()
        wait_for(unit.is_connected, timeout=20, what="the unit connected over TLS")
        unit.publish(protocol.topic(SERIAL, "status", s.mqtt_topic_root), b"online", qos=1).wait_for_publish(10)
        assert got.get(timeout=20) == b"online"
    finally:
        unit.loop_stop()
        unit.disconnect()
        service.loop_stop()
        service.disconnect()

    # A unit that does not trust our CA refuses the broker; one that speaks plain MQTT is refused.
    with pytest.raises(ssl.SSLCertVerificationError):
        _device(s, ssl.create_default_context()).connect("127.0.0.1", s.device_mqtt_port)
    plain = _device(s, None)
    try:
        refused = plain.connect("127.0.0.1", s.device_mqtt_port)
        plain.loop(timeout=2.0)
        plain.loop(timeout=2.0)
        assert refused != 0 or not plain.is_connected()
    except (OSError, ConnectionError):
        pass
