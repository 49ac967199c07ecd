"""The project-owned local stack: PostgreSQL, Mosquitto and Redis on loopback under ``.paygo/``.

``up`` installs a missing server with apt-get (root on Debian), starts each server on its own
port, waits until it answers and is idempotent; ``down`` stops them and leaves no process behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from backoffice.config import Settings

log = logging.getLogger(__name__)

# Servers refuse or should not run as root; when we are root they run as this system user.
PG_OS_USER = "postgres"


class StackError(Exception):
    """Something the operator has to act on; the message says what to do."""


@dataclass
class ServiceStatus:
    name: str
    port: int
    setting: str
    state: str  # "running", "stopped", "port taken"
    pid: int | None
    detail: str = ""


# --------------------------------------------------------------------------- helpers


def _is_root() -> bool:
    return os.geteuid() == 0


def _is_debian() -> bool:
    return Path("/etc/debian_version").exists()


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _port_owner(port: int) -> psutil.Process | None:
    """The process listening on a TCP port, when we may see it."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, PermissionError):
        return None
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            try:
                return psutil.Process(c.pid)
            except psutil.NoSuchProcess:
                return None
    return None


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().split()
    except (FileNotFoundError, PermissionError):
        return None
    if not text or not text[0].isdigit():
        return None
    return int(text[0])


def _alive(pid: int | None, name_hint: str) -> bool:
    """True when pid is a live process whose command line mentions name_hint (guards reused pids)."""
    if pid is None:
        return False
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        return name_hint in " ".join(p.cmdline()) or name_hint in p.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _terminate(pid: int, timeout: float = 30.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid):
            return
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _wait_until(check: Callable[[], object], what: str, timeout: float = 60.0, log_file: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - a server that is starting may refuse in many ways
            pass
        time.sleep(0.2)
    hint = f"; see {log_file}" if log_file else ""
    raise StackError(f"{what} did not answer within {timeout:.0f}s{hint}")


def _run(cmd: list[str], user: str | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)  # type: ignore[call-overload]


def _make_traversable(path: Path, user: str) -> None:
    """Let a service user reach its data dir: add the search (x) bit on ancestors that lack it.

    Needed when the checkout lives under a private directory such as one made by ``mktemp -d``.
    Only the execute bit is added; nothing becomes readable or writable.
    """
    uid = pwd.getpwnam(user).pw_uid
    for parent in reversed(path.resolve().parents):
        st = parent.stat()
        if st.st_uid == uid:
            continue
        if not st.st_mode & 0o001:
            log.info("adding o+x to %s so that user %s can reach %s", parent, user, path)
            os.chmod(parent, st.st_mode | 0o001)


# --------------------------------------------------------------------------- installation


def _pg_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    for c in reversed(candidates):
        if (Path(c) / "postgres").exists() and (Path(c) / "initdb").exists():
            return Path(c)
    found = shutil.which("pg_ctl")
    if found and (Path(found).resolve().parent / "initdb").exists():
        return Path(found).resolve().parent
    return None


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def missing_packages() -> list[str]:
    """Debian packages whose server binary this machine lacks."""
    missing = []
    if _pg_bindir() is None:
        missing.append("postgresql")
    if _which("mosquitto") is None:
        missing.append("mosquitto")
    if _which("redis-server") is None:
        missing.append("redis-server")
    return missing


def ensure_installed(packages: list[str] | None = None) -> None:
    """Install missing server packages with apt-get when root on Debian, else say how."""
    pkgs = missing_packages() if packages is None else packages
    if not pkgs:
        return
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *pkgs]
    if not (_is_root() and _is_debian()):
        raise StackError(
            f"missing server packages: {' '.join(pkgs)}; install them with: sudo apt-get update && sudo {' '.join(cmd)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log.warning("installing %s with apt-get", " ".join(pkgs))
    try:
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
        subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    except subprocess.CalledProcessError as err:
        raise StackError(f"'{' '.join(cmd)}' failed: {(err.stderr or '').strip()[-500:]}") from err
    still = [p for p in missing_packages() if p in pkgs]
    if still:
        raise StackError(f"apt-get ran but {' '.join(still)} is still missing")


# --------------------------------------------------------------------------- services


class Service:
    name: str
    setting: str
    package: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.home_dir / self.name

    @property
    def port(self) -> int:
        raise NotImplementedError

    def pid(self) -> int | None:
        raise NotImplementedError

    def running(self) -> bool:
        raise NotImplementedError

    def answers(self) -> bool:
        return _port_open(self.port)

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            _terminate(pid)

    def ports(self) -> list[tuple[int, str]]:
        """Every port the server listens on, with the setting that moves it."""
        return [(self.port, self.setting)]

    def _check_port_free(self) -> None:
        for port, setting in self.ports():
            if not _port_open(port):
                continue
            owner = _port_owner(port)
            who = f" (pid {owner.pid}, {owner.name()})" if owner else ""
            raise StackError(
                f"port {port} for {self.name} is already in use by another program{who}; "
                f"choose another port with {setting}=<port>, e.g. {setting}={port + 1}"
            )

    def up(self) -> bool:
        """Start the server if it is not running; True when it was started now."""
        if self.running():
            _wait_until(self.answers, f"{self.name} on port {self.port}", log_file=self.log_file)
            return False
        self._check_port_free()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._start()
        _wait_until(self.answers, f"{self.name} on port {self.port}", log_file=self.log_file)
        return True

    def down(self) -> bool:
        if not self.running():
            return False
        self._stop()
        return True

    @property
    def log_file(self) -> Path:
        return self.dir / f"{self.name}.log"

    def status(self) -> ServiceStatus:
        if self.running():
            return ServiceStatus(self.name, self.port, self.setting, "running", self.pid())
        if _port_open(self.port):
            owner = _port_owner(self.port)
            return ServiceStatus(
                self.name,
                self.port,
                self.setting,
                "port taken",
                owner.pid if owner else None,
                f"another program listens; change {self.setting}",
            )
        return ServiceStatus(self.name, self.port, self.setting, "stopped", None)


class Postgres(Service):
    name = "postgres"
    setting = "PAYGO_PG_PORT"
    package = "postgresql"

    @property
    def port(self) -> int:
        return self.settings.pg_port

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def run_dir(self) -> Path:
        return self.dir / "run"

    @property
    def user(self) -> str | None:
        return PG_OS_USER if _is_root() else None

    def _bindir(self) -> Path:
        b = _pg_bindir()
        if b is None:
            raise StackError("PostgreSQL server binaries not found; run 'paygo stack up' as root to install")
        return b

    def pid(self) -> int | None:
        return _read_pid(self.data / "postmaster.pid")

    def running(self) -> bool:
        return _alive(self.pid(), "postgres")

    def answers(self) -> bool:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="paygo", dbname="postgres", connect_timeout=2
        ) as conn:
            conn.execute("select 1")
        return True

    def timescaledb_available(self) -> bool:
        libdir = self._bindir().parent / "lib"
        return bool(list(libdir.glob("timescaledb*.so")))

    def _initdb(self) -> None:
        bindir = self._bindir()
        if self.user:
            _make_traversable(self.dir, self.user)
            shutil.chown(self.dir, self.user, self.user)
        self.data.mkdir(mode=0o700, exist_ok=True)
        self.run_dir.mkdir(exist_ok=True)
        if self.user:
            for p in (self.data, self.run_dir):
                shutil.chown(p, self.user, self.user)
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "paygo",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            user=self.user,
        )
        with (self.data / "postgresql.conf").open("a") as f:
            f.write("\ninclude_if_exists = 'paygo.conf'\n")

    def _write_conf(self) -> None:
        lines = [
            "# written by 'paygo stack up' on every start; edit the settings, not this file",
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.run_dir}'",
            "max_connections = 200",
            "shared_buffers = 512MB",
            "work_mem = 32MB",
            "maintenance_work_mem = 256MB",
            "max_wal_size = 4GB",
            "checkpoint_timeout = 15min",
            "log_min_duration_statement = 2000",
        ]
        if self.timescaledb_available():
            lines.append("shared_preload_libraries = 'timescaledb'")
            lines.append("timescaledb.telemetry_level = off")
        conf = self.data / "paygo.conf"
        conf.write_text("\n".join(lines) + "\n")
        if self.user:
            shutil.chown(conf, self.user, self.user)

    def _start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            if self.data.exists() and any(self.data.iterdir()):
                raise StackError(f"{self.data} exists but holds no database cluster; move it away")
            self._initdb()
        self._write_conf()
        pidfile = self.data / "postmaster.pid"
        if pidfile.exists():  # stale: running() already said no live postgres owns it
            log.warning("removing stale %s", pidfile)
            pidfile.unlink()
        log_file = self.log_file
        if self.user:
            log_file.touch()
            shutil.chown(log_file, self.user, self.user)
        try:
            _run(
                [str(self._bindir() / "pg_ctl"), "-D", str(self.data), "-l", str(log_file), "-w", "-t", "60", "start"],
                user=self.user,
            )
        except subprocess.CalledProcessError as err:
            tail = log_file.read_text()[-800:] if log_file.exists() else ""
            raise StackError(f"PostgreSQL did not start: {err.stderr.strip()} {tail}") from err
        _wait_until(self.answers, "postgres", log_file=log_file)
        self._ensure_database()

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="paygo", dbname="postgres", autocommit=True
        ) as conn:
            if conn.execute("select 1 from pg_database where datname = 'paygo'").fetchone() is None:
                conn.execute("create database paygo")
        if self.timescaledb_available():
            with psycopg.connect(
                host="127.0.0.1", port=self.port, user="paygo", dbname="paygo", autocommit=True
            ) as conn:
                conn.execute("create extension if not exists timescaledb")

    def _stop(self) -> None:
        try:
            _run(
                [str(self._bindir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"],
                user=self.user,
            )
        except subprocess.CalledProcessError:
            super()._stop()


def device_acl(root: str) -> str:
    """ACL of the device listener. ``%u`` is the username, i.e. the unit's serial, so one set of
    patterns confines every unit to its own topics."""
    own = [("write", "telemetry"), ("write", "events"), ("write", "status"), ("write", "metrics"),
           ("write", "cmd/ack"), ("read", "cmd")]  # fmt: skip
    lines = ["# written by 'paygo stack up'"]
    for r in _acl_roots(root):
        lines += [f"pattern {access} {r}/%u/{kind}" for access, kind in own]
    return "\n".join(lines) + "\n"


def services_acl(root: str) -> str:
    """ACL of the services listener. Anonymous clients (development tools, tests and benchmarks on
    the loopback-only local broker) may do anything; production turns them off (deploy/README.md).
    The ingest role may only read what units publish; the delivery role may only send commands
    and read their acknowledgements."""
    roles = {
        "ingest": [("read", "telemetry"), ("read", "events"), ("read", "status"), ("read", "metrics")],
        "delivery": [("write", "cmd"), ("read", "cmd/ack")],
    }
    lines = ["# written by 'paygo stack up'", "topic readwrite #"]
    for role, grants in roles.items():
        lines += ["", f"user {role}"]
        for r in _acl_roots(root):
            lines += [f"topic {access} {r}/+/{kind}" for access, kind in grants]
    return "\n".join(lines) + "\n"


def _acl_roots(root: str) -> list[str]:
    """The protocol's root and one prefix level in front of it (tests and brokers shared by several
    platforms use one), plus ``root`` when it is neither."""
    from ingest.protocol import TOPIC_ROOT

    roots = [TOPIC_ROOT, f"+/{TOPIC_ROOT}"]
    if root != TOPIC_ROOT and root.partition("/")[2] != TOPIC_ROOT:
        roots.append(root)
    return roots


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
        return self.dir / "mosquitto.pid"

    def pid(self) -> int | None:
        return _read_pid(self.pid_file)

    def running(self) -> bool:
        return _alive(self.pid(), "mosquitto")

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
            *(["user root"] if _is_root() else []),
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
            "message_size_limit 262144",
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
            "# Units: their own username (the serial) and password; the ACL keeps each to its own topics.",
            f"listener {self.settings.device_mqtt_port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {self.password_file}",
            f"acl_file {self.acl_file}",
        ]
        if not self.password_file.exists():
            self.password_file.touch(mode=0o600)
        self.acl_file.write_text(device_acl(self.settings.mqtt_topic_root))
        self.services_acl_file.write_text(services_acl(self.settings.mqtt_topic_root))
        self._write_services_passwords()
        self.conf_file.write_text("\n".join(lines) + "\n")

    def ports(self) -> list[tuple[int, str]]:
        return [(self.port, self.setting), (self.settings.device_mqtt_port, "PAYGO_DEVICE_MQTT_PORT")]

    @property
    def password_file(self) -> Path:
        return self.dir / "devices.passwd"

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
        from backoffice.config import SERVICE_ROLES
        from backoffice.devices.service import mosquitto_hash

        logins = dict(self.settings.service_login(role) for role in SERVICE_ROLES)
        lines = [f"{user}:{mosquitto_hash(password)}" for user, password in logins.items()]
        tmp = self.services_password_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.chmod(0o600)
        tmp.replace(self.services_password_file)

    def _start(self) -> None:
        binary = _which("mosquitto")
        if binary is None:
            raise StackError("mosquitto not found; run 'paygo stack up' as root to install it")
        if self.pid_file.exists():
            self.pid_file.unlink()
        self.write_conf()
        try:
            _run([binary, "-c", str(self.conf_file), "-d"])
        except subprocess.CalledProcessError as err:
            tail = self.log_file.read_text()[-800:] if self.log_file.exists() else ""
            raise StackError(f"mosquitto did not start: {err.stderr.strip()} {tail}") from err
        _wait_until(lambda: self.pid_file.exists(), "mosquitto pid file", timeout=15, log_file=self.log_file)

    def reload(self) -> None:
        """Re-read the configuration (password file, ACL) without dropping connections."""
        pid = self.pid()
        if pid is not None and self.running():
            os.kill(pid, signal.SIGHUP)


class Redis(Service):
    name = "redis"
    setting = "PAYGO_REDIS_PORT"
    package = "redis-server"

    @property
    def port(self) -> int:
        return self.settings.redis_port

    @property
    def pid_file(self) -> Path:
        return self.dir / "redis.pid"

    def pid(self) -> int | None:
        return _read_pid(self.pid_file)

    def running(self) -> bool:
        return _alive(self.pid(), "redis-server")

    def answers(self) -> bool:
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).ping())

    def _start(self) -> None:
        binary = _which("redis-server")
        if binary is None:
            raise StackError("redis-server not found; run 'paygo stack up' as root to install it")
        if self.pid_file.exists():
            self.pid_file.unlink()
        conf = self.dir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    "# written by 'paygo stack up'",
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    "daemonize yes",
                    f"pidfile {self.pid_file}",
                    f"logfile {self.log_file}",
                    f"dir {self.dir}",
                    "save 60 1000",
                    "appendonly no",
                    "protected-mode yes",
                ]
            )
            + "\n"
        )
        try:
            _run([binary, str(conf)])
        except subprocess.CalledProcessError as err:
            raise StackError(f"redis-server did not start: {err.stderr.strip()}") from err


# --------------------------------------------------------------------------- the stack


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.postgres = Postgres(settings)
        self.mosquitto = Mosquitto(settings)
        self.redis = Redis(settings)
        self.services: list[Service] = [self.postgres, self.mosquitto, self.redis]

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise concurrent up/down calls (a test run and a demo starting together)."""
        home = self.settings.home_dir
        home.mkdir(parents=True, exist_ok=True)
        with (home / "stack.lock").open("w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def up(self) -> list[str]:
        """Start what is not running; returns the names of the servers started now."""
        with self._lock():
            ensure_installed()
            # Check every port before starting anything, so a clash leaves nothing half-started.
            for s in self.services:
                if not s.running():
                    s._check_port_free()
            return [s.name for s in self.services if s.up()]

    def down(self, only: list[str] | None = None) -> list[str]:
        with self._lock():
            return [s.name for s in reversed(self.services) if (only is None or s.name in only) and s.down()]

    def status(self) -> list[ServiceStatus]:
        return [s.status() for s in self.services]

    def all_running(self) -> bool:
        return all(s.running() for s in self.services)


def fresh_database(settings: Settings, name: str) -> Settings:
    """A new, migrated database ``name`` on the local stack (dropped first if it exists), and the
    settings that point at it: benchmarks run in one of their own."""
    import psycopg

    from backoffice.migrate import migrate

    Stack(settings).up()
    drop_database(settings, name)
    with psycopg.connect(_admin_url(settings), autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    fresh = settings.model_copy(update={"database_url": f"postgresql://paygo@127.0.0.1:{settings.pg_port}/{name}"})
    with psycopg.connect(fresh.database_url, autocommit=True) as conn:
        migrate(conn)
    return fresh


def drop_database(settings: Settings, name: str) -> None:
    import psycopg

    with psycopg.connect(_admin_url(settings), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def _admin_url(settings: Settings) -> str:
    return f"postgresql://paygo@127.0.0.1:{settings.pg_port}/postgres"
