"""Telling the MQTT broker to re-read its password file after ``paygo devices provision`` rewrote it:
the configured reload command, or a SIGHUP to the pid in the broker's pid file (Mosquitto re-reads
its password file and ACL on SIGHUP without dropping connections)."""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import subprocess
import threading
from collections.abc import Iterable
from typing import Any

import protocol
from backoffice.config import Settings


class BrokerReloadError(RuntimeError):
    """The broker could not be told; the message says what to do."""


def reload(settings: Settings) -> str:
    """Make the broker re-read its password file; returns what was done."""
    if settings.broker_reload_command:
        cmd = shlex.split(settings.broker_reload_command)
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as err:
            raise BrokerReloadError(f"PAYGO_BROKER_RELOAD_COMMAND failed: {err}") from err
        return f"ran {settings.broker_reload_command!r}"
    path = settings.broker_pid_path
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return f"no broker pid in {path}: start the broker, or set PAYGO_BROKER_RELOAD_COMMAND"
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return f"the broker of {path} (pid {pid}) is not running; it reads the file when it starts"
    return f"sent SIGHUP to the broker (pid {pid})"


# ---- the device listener's dynamic-security plugin (issue 22 finding 1)
#
# Mosquitto 2.0's acl_file is checked when a message is delivered, never at SUBSCRIBE: a unit's login
# could subscribe to the ingest workers' shared subscription, be dealt a share of every unit's
# readings and have them dropped on the read check, after the senders had their PUBACK. The plugin
# checks the subscription itself, and refuses it at SUBACK ("Not authorized"). Mosquitto 2.0.11's plugin
# has no %u in its ACLs, so each unit has a role of its own naming its own topics.

DYNSEC_TOPIC = "$CONTROL/dynamic-security/v1"
ADMIN_USERNAME = "paygo-broker-admin"  # not a serial (registry.service.check_serial refuses the name)
ADMIN_ROLE = "paygo-broker-admin"
UNIT_ROLE_PREFIX = "unit:"
# Everything not granted is refused: publishing, receiving and subscribing (unsubscribing is harmless).
DEFAULT_ACL_ACCESS = {"publishClientSend": False, "publishClientReceive": False, "subscribe": False,
                      "unsubscribe": True}  # fmt: skip
COMMANDS_PER_MESSAGE = 200


def unit_acls(serial: str, root: str) -> list[dict[str, object]]:
    """The unit's own topics and nothing else: it publishes what it measures and acknowledges, and
    subscribes to (and receives) its own command topic; a literal filter, never a wildcard."""
    acls: list[dict[str, object]] = []
    for access, pattern in protocol.unit_acl_patterns(root, serial):
        types = ("publishClientSend",) if access == "write" else ("subscribePattern", "publishClientReceive")
        acls += [{"acltype": t, "topic": pattern, "priority": 0, "allow": True} for t in types]
    return acls


def admin_acls() -> list[dict[str, object]]:
    return [{"acltype": t, "topic": f"{DYNSEC_TOPIC}/#", "priority": 0, "allow": True}
            for t in ("publishClientSend", "publishClientReceive", "subscribePattern")]  # fmt: skip


def _dynsec_client(username: str, mosquitto_hash: str, rolename: str) -> dict[str, object]:
    """A client entry of the plugin's file from mosquitto's own hash (``$7$iterations$salt$hash``: the
    same PBKDF2-SHA512 the plugin uses)."""
    _, _, iterations, salt, digest = mosquitto_hash.split("$")
    return {"username": username, "roles": [{"rolename": rolename}], "password": digest, "salt": salt,
            "iterations": int(iterations)}  # fmt: skip


def dynsec_config(
    existing: dict[str, Any] | None, admin_hash: str, units: list[tuple[str, str]], root: str
) -> dict[str, Any]:
    """The plugin's configuration file, written while the broker is stopped (the plugin owns it while
    it runs and saves every change): the administrator with ``admin_hash`` (the password follows
    PAYGO_SECRET_KEY), the clients already there, and the units of ``units`` (serial, mosquitto hash)
    that it does not know yet (the password file of an earlier broker)."""
    config: dict[str, Any] = existing or {"clients": [], "groups": [], "roles": []}
    config["defaultACLAccess"] = dict(DEFAULT_ACL_ACCESS)
    config["clients"] = [c for c in config.get("clients", []) if c.get("username") != ADMIN_USERNAME]
    config["roles"] = [r for r in config.get("roles", []) if r.get("rolename") != ADMIN_ROLE]
    config["clients"].append(_dynsec_client(ADMIN_USERNAME, admin_hash, ADMIN_ROLE))
    config["roles"].append({"rolename": ADMIN_ROLE, "acls": admin_acls()})
    known = {c.get("username") for c in config["clients"]}
    for serial, hashed in units:
        if serial not in known:
            config["clients"].append(_dynsec_client(serial, hashed, UNIT_ROLE_PREFIX + serial))
            config["roles"].append({"rolename": UNIT_ROLE_PREFIX + serial, "acls": unit_acls(serial, root)})
    config.setdefault("groups", [])
    return config


class _Control:
    """A connection to the plugin's control topic as the broker's administrator: one request, one answer."""

    def __init__(self, settings: Settings) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self.ready = threading.Event()
        self.refused: str | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{ADMIN_USERNAME}-{os.getpid()}",
                                  protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
        self.client.username_pw_set(ADMIN_USERNAME, settings.broker_admin_password())
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.ready.set()
        self.client.on_message = lambda c, u, msg: self.answers.put(json.loads(msg.payload))
        try:
            self.client.connect(settings.mqtt_host, settings.device_mqtt_port)
        except OSError as err:
            raise BrokerReloadError(f"the broker's device listener ({settings.mqtt_host}:"
                                    f"{settings.device_mqtt_port}) did not answer: {err}") from err  # fmt: skip
        self.client.loop_start()
        if not self.ready.wait(20) or self.refused:
            self.close()
            raise BrokerReloadError(
                f"the broker refused its administrator ({self.refused or 'no answer'}): is the device "
                "listener running the dynamic-security plugin with the current PAYGO_SECRET_KEY (deploy/README.md)?"
            )

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            self.refused = str(rc)
            self.ready.set()
        else:
            client.subscribe(f"{DYNSEC_TOPIC}/response", qos=1)

    def run(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        responses: list[dict[str, Any]] = []
        for i in range(0, len(commands), COMMANDS_PER_MESSAGE):
            self.client.publish(DYNSEC_TOPIC, json.dumps({"commands": commands[i : i + COMMANDS_PER_MESSAGE]}), qos=1)
            try:
                responses += self.answers.get(timeout=60)["responses"]
            except queue.Empty:
                raise BrokerReloadError("the broker's dynamic-security plugin did not answer") from None
        return responses

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def sync(settings: Settings, logins: list[tuple[str, str]], reset: Iterable[str] = ()) -> str:
    """Make the device listener know exactly these units (serial, password): new ones get a login and
    their own role, retired ones lose theirs, those in ``reset`` (new credentials) get their password
    again; connected units stay connected."""
    control = _Control(settings)
    try:
        listed = control.run([{"command": "listClients", "verbose": False, "count": -1, "offset": 0}])
        known = set(listed[0].get("data", {}).get("clients", [])) - {ADMIN_USERNAME}
        wanted = dict(logins)
        commands: list[dict[str, Any]] = []
        for serial in sorted(set(wanted) - known):
            role = UNIT_ROLE_PREFIX + serial
            commands += [
                {"command": "deleteRole", "rolename": role},  # left over from an earlier login, if any
                {"command": "createRole", "rolename": role, "acls": unit_acls(serial, settings.mqtt_topic_root)},
                {
                    "command": "createClient",
                    "username": serial,
                    "password": wanted[serial],
                    "roles": [{"rolename": role}],
                },  # fmt: skip
            ]
        for serial in sorted(set(reset) & known & set(wanted)):
            commands.append({"command": "setClientPassword", "username": serial, "password": wanted[serial]})
        for serial in sorted(known - set(wanted)):
            commands += [{"command": "deleteClient", "username": serial},
                         {"command": "deleteRole", "rolename": UNIT_ROLE_PREFIX + serial}]  # fmt: skip
        failed = [r for r in control.run(commands) if r.get("error") and r.get("command") != "deleteRole"]
        if failed:
            raise BrokerReloadError(f"the broker refused {len(failed)} change(s), the first: {failed[0]}")
        added, removed = len(set(wanted) - known), len(known - set(wanted))
        return f"the broker's device listener: {added} login(s) added, {removed} removed"
    finally:
        control.close()
