"""The local Mosquitto: a listener for the platform's services (each role logs in as itself) and one
for units (per-unit logins, an ACL that keeps each unit to its own topics), persistence on."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
from pathlib import Path

import protocol
from backoffice.config import SERVICE_ROLES
from backoffice.devices import broker
from backoffice.devices.service import mosquitto_hash
from devtools.install import which
from devtools.process import StackError, alive, is_root, read_pid, run, wait_until
from devtools.server import Service
from devtools.tls import TlsFiles, tls_dir

# The broker takes messages up to this size, well above what the protocol allows
# (protocol.MAX_MESSAGE_BYTES), so that a unit's oversized message reaches a worker and leaves a
# dead letter with its size instead of vanishing. Beyond it Mosquitto refuses the message and
# closes the sender's connection. The worker keeps only the start of an oversized message, so this
# does not raise what a worker holds in memory.
MESSAGE_SIZE_LIMIT = 8 * protocol.MAX_MESSAGE_BYTES


def device_acl(root: str) -> str:
    """ACL of the device listener. ``%u`` is the username, i.e. the unit's serial, so one set of
    patterns confines every unit to its own topics."""
    lines = ["# written by 'paygo stack up'"]
    lines += [f"pattern {access} {pattern}" for access, pattern in protocol.unit_acl_patterns(root)]
    return "\n".join(lines) + "\n"


def services_acl(root: str) -> str:
    """ACL of the services listener. Anonymous clients (development tools, tests and benchmarks on
    the loopback-only local broker) may do anything; production turns them off (deploy/README.md).
    Each service role gets only its grants (``protocol.SERVICE_GRANTS``)."""
    lines = ["# written by 'paygo stack up'", "topic readwrite #"]
    for role in protocol.SERVICE_GRANTS:
        lines += ["", f"user {role}"]
        lines += [f"topic {access} {name}" for access, name in protocol.service_acl_topics(role, root)]
    return "\n".join(lines) + "\n"


def dynsec_plugin() -> str:
    """Mosquitto's dynamic-security plugin, shipped in Debian's mosquitto package."""
    found = sorted(glob.glob("/usr/lib/*/mosquitto_dynamic_security.so")) + sorted(
        glob.glob("/usr/lib/mosquitto_dynamic_security.so")
    )
    if not found:
        raise StackError("mosquitto_dynamic_security.so not found: install Debian's mosquitto package (2.0+)")
    return found[0]


class Mosquitto(Service):
    name = "mosquitto"
    setting = "PAYGO_MQTT_PORT"
    package = "mosquitto"

    @property
    def port(self) -> int:
        return self.settings.mqtt_port

    @property
    def conf_file(self) -> Path:
        return self.dir / "mosquitto.conf"

    @property
    def pid_file(self) -> Path:
        return self.settings.broker_pid_path

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def running(self) -> bool:
        return alive(self.pid(), "mosquitto")

    def write_conf(self) -> None:
        """Generate the broker configuration (persistence on, queues sized for worker outages)."""
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        extra = self.dir / "conf.d"
        extra.mkdir(exist_ok=True)
        lines = [
            "# written by 'paygo stack up'; see docs/architecture.md for the reasoning behind the limits",
            f"pid_file {self.pid_file}",
            # Keep running as the invoking user when root (the state dir belongs to it).
            *(["user root"] if is_root() else []),
            "persistence true",
            f"persistence_location {data}/",
            "autosave_interval 60",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages false",
            # A persistent ingest session keeps queueing while its worker is away: 10,000 units
            # at one report per 20 min is ~30,000 messages an hour, so 2,000,000 is ~60 hours.
            "max_queued_messages 2000000",
            "max_queued_bytes 0",
            "max_inflight_messages 1000",
            "persistent_client_expiration 14d",
            f"message_size_limit {MESSAGE_SIZE_LIMIT}",
            f"include_dir {extra}",
            # Each listener has its own authentication: services inside, units outside.
            "per_listener_settings true",
            "",
            "# The platform's services: each role logs in as itself and the ACL gives it only what it",
            "# needs. Anonymous (local tools and tests, loopback only) is for development.",
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"password_file {self.services_password_file}",
            f"acl_file {self.services_acl_file}",
            "",
            "# Units: their own username (the serial) and password. The dynamic-security plugin keeps each to",
            "# its own topics, subscriptions included (refused at SUBACK): acl_file never checks a subscription.",
            "# The client id is the username whatever the unit sends, so a unit cannot take over the",
            "# session of a worker or of another unit (a second login of the same unit replaces the first).",
            f"listener {self.settings.device_mqtt_port} 127.0.0.1",
            *self._tls_lines(),
            "use_username_as_clientid true",
            "allow_anonymous false",
            f"plugin {dynsec_plugin()}",
            f"plugin_opt_config_file {self.dynsec_file}",
        ]
        if not self.password_file.exists():
            self.password_file.touch(mode=0o600)
        self.acl_file.write_text(device_acl(self.settings.mqtt_topic_root))
        self.services_acl_file.write_text(services_acl(self.settings.mqtt_topic_root))
        self._write_services_passwords()
        self._write_dynsec()
        self.conf_file.write_text("\n".join(lines) + "\n")

    def _write_dynsec(self) -> None:
        """The device listener's plugin file, before the broker starts (the plugin owns it while it runs):
        the administrator's password from the secret key, and the units of the password file that it does
        not know yet (a stack that ran before the plugin)."""
        existing = json.loads(self.dynsec_file.read_text()) if self.dynsec_file.exists() else None
        units = []
        for line in self.password_file.read_text().splitlines():
            serial, _, hashed = line.partition(":")
            if hashed.startswith("$7$"):
                units.append((serial, hashed))
        admin_hash = mosquitto_hash(self.settings.broker_admin_password())
        config = broker.dynsec_config(existing, admin_hash, units, self.settings.mqtt_topic_root)
        tmp = self.dynsec_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=1))
        tmp.chmod(0o600)
        tmp.replace(self.dynsec_file)

    def _tls_lines(self) -> list[str]:
        """With PAYGO_TLS=1 the device listener speaks only TLS (1.2 and up) with the server certificate
        of ``paygo tls init``. A unit may present a client certificate signed by the CA; to require
        one, set ``require_certificate true`` (and ``use_identity_as_username true``) in production."""
        if not self.settings.tls:
            return []
        files = TlsFiles(tls_dir(self.settings))
        return [f"cafile {files.ca_cert}", f"certfile {files.server_cert}", f"keyfile {files.server_key}",
                "tls_version tlsv1.2", "require_certificate false"]  # fmt: skip

    def ports(self) -> list[tuple[int, str]]:
        return [(self.port, self.setting), (self.settings.device_mqtt_port, "PAYGO_DEVICE_MQTT_PORT")]

    @property
    def password_file(self) -> Path:
        return self.settings.device_password_file

    @property
    def dynsec_file(self) -> Path:
        return self.dir / "dynamic-security.json"

    @property
    def acl_file(self) -> Path:
        return self.dir / "devices.acl"

    @property
    def services_password_file(self) -> Path:
        return self.dir / "services.passwd"

    @property
    def services_acl_file(self) -> Path:
        return self.dir / "services.acl"

    def _write_services_passwords(self) -> None:
        logins = dict(self.settings.service_login(role) for role in SERVICE_ROLES)
        lines = [f"{user}:{mosquitto_hash(password)}" for user, password in logins.items()]
        tmp = self.services_password_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.chmod(0o600)
        tmp.replace(self.services_password_file)

    def _start(self) -> None:
        binary = which("mosquitto")
        if binary is None:
            raise StackError("mosquitto not found; run 'paygo stack up' as root to install it")
        if self.pid_file.exists():
            self.pid_file.unlink()
        self.write_conf()
        try:
            run([binary, "-c", str(self.conf_file), "-d"])
        except subprocess.CalledProcessError as err:
            tail = self.log_file.read_text()[-800:] if self.log_file.exists() else ""
            raise StackError(f"mosquitto did not start: {err.stderr.strip()} {tail}") from err
        wait_until(lambda: self.pid_file.exists(), "mosquitto pid file", timeout=15, log_file=self.log_file)

    def up(self) -> bool:
        """Start the broker, or, when it runs already, give it the current service logins and ACLs
        (the passwords derive from the secret key, which may have changed) without a restart."""
        if self.running():
            self.acl_file.write_text(device_acl(self.settings.mqtt_topic_root))
            self.services_acl_file.write_text(services_acl(self.settings.mqtt_topic_root))
            self._write_services_passwords()
            self.reload()
        return super().up()

    def reload(self) -> None:
        """Re-read the configuration (password file, ACL) without dropping connections."""
        pid = self.pid()
        if pid is not None and self.running():
            os.kill(pid, signal.SIGHUP)
