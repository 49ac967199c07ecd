"""The HA local stack: etcd, three PostgreSQL members under Patroni (synchronous mode), pgBackRest's
stanza and WAL archive, Mosquitto, and Redis (a primary, a replica, three sentinels).

``up`` is idempotent and starts only what is not running; ``down`` stops everything it started,
standbys before the leader so that nothing is promoted on the way out."""

from __future__ import annotations

import logging
from pathlib import Path

from backoffice.config import Settings
from devtools.ha import patroni
from devtools.ha.backup import Backup
from devtools.ha.etcd import Etcd
from devtools.ha.ports import SENTINELS, HAPorts
from devtools.ha.redis_sentinel import RedisNode, Sentinel
from devtools.install import ensure_installed, missing_ha_packages
from devtools.mosquitto import Mosquitto
from devtools.process import StackError, wait_until
from devtools.server import Service, ServiceStatus

log = logging.getLogger(__name__)

READY_TIMEOUT = 120.0  # seconds for the cluster to elect a leader and a synchronous standby


class HAStack:
    def __init__(self, settings: Settings, ports: HAPorts | None = None) -> None:
        self.settings = settings
        self.ports = ports or HAPorts.from_env()
        self.dir = settings.home_dir / "ha"
        self.etcd = Etcd(settings, self.ports)
        self.backup = Backup(settings, self.ports)
        self.members = patroni.members(settings, self.ports, self.backup.archive_command)
        self.mosquitto = Mosquitto(settings)
        self.redis = [RedisNode(settings, self.ports, i) for i in range(2)]
        self.sentinels = [Sentinel(settings, self.ports, i) for i in range(SENTINELS)]
        self.services: list[Service] = [self.etcd, *self.members, self.mosquitto, *self.redis, *self.sentinels]

    # -- what the services connect to ------------------------------------------------------
    @property
    def database_url(self) -> str:
        return self.ports.database_url()

    @property
    def standby_url(self) -> str:
        return self.ports.standby_url()

    @property
    def redis_url(self) -> str:
        return self.ports.redis_url()

    def env(self) -> dict[str, str]:
        """The variables that point the platform's processes at this stack."""
        return {"PAYGO_DATABASE_URL": self.database_url, "PAYGO_DATABASE_READ_URL": self.standby_url,
                "PAYGO_REDIS_URL": self.redis_url}  # fmt: skip

    @property
    def env_file(self) -> Path:
        return self.dir / "env"

    # -- which ports the stack under .paygo/ha was made with ------------------------------------
    @property
    def ports_file(self) -> Path:
        return self.dir / "port-base"

    def recorded_base(self) -> int | None:
        """PAYGO_HA_PORT_BASE the stack under .paygo/ha was made with (None: no stack there yet).
        Stacks made before the file existed are recognised by redis0's configuration."""
        try:
            return int(self.ports_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
        conf = self.redis[0].conf
        if conf.exists():
            for line in conf.read_text().splitlines():
                if line.startswith("port "):
                    return int(line.split()[1]) - (self.ports.redis(0) - self.ports.base)
        return None

    def check_port_base(self) -> None:
        """Refuse to start a stack made with other ports: its nodes' state names those ports (etcd's
        member, Patroni's members in etcd, Sentinel's and the replicas' rewritten configurations,
        which record what Sentinel decided), so rewriting them could only be partly right."""
        recorded = self.recorded_base()
        if recorded is not None and recorded != self.ports.base:
            raise StackError(
                f"the HA stack under {self.dir} was made with PAYGO_HA_PORT_BASE={recorded}, not {self.ports.base}: "
                f"its nodes recorded those ports (etcd, Patroni, Sentinel). Either set PAYGO_HA_PORT_BASE={recorded} "
                f"again, or remove it and its data with 'paygo stack down --ha --wipe' (PAYGO_HA_PORT_BASE={recorded}) "
                f"and start it afresh with 'paygo stack up --ha'"
            )

    # -- up / down ---------------------------------------------------------------------------
    def up(self) -> list[str]:
        self.check_port_base()
        ensure_installed(missing_ha_packages())
        for s in self.services:
            if not s.running():
                s._check_port_free(wait_source=False)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ports_file.write_text(f"{self.ports.base}\n")
        self.backup.prepare()
        started = [s.name for s in [self.etcd] if s.up()]
        for m in self.members:
            # The first member bootstraps the cluster; the others clone it (pg_basebackup) once it leads.
            if m.up():
                started.append(m.name)
        wait_until(self.healthy, "the Patroni cluster (a leader and a synchronous standby)", READY_TIMEOUT,
                   log_file=self.members[0].log_file)  # fmt: skip
        self._ensure_database()
        self.backup.ensure_stanza()
        if self.mosquitto.up():
            started.append(self.mosquitto.name)
        started += [r.name for r in [*self.redis, *self.sentinels] if r.up()]
        wait_until(lambda: all(s.master() for s in self.sentinels), "the sentinels to agree on a Redis primary",
                   READY_TIMEOUT, log_file=self.sentinels[0].log_file)  # fmt: skip
        self.env_file.write_text("".join(f"export {k}='{v}'\n" for k, v in self.env().items()))
        return started

    def healthy(self) -> bool:
        return patroni.leader_index(self.ports) is not None and patroni.sync_standby_ready(self.ports)

    def leader(self) -> patroni.PatroniMember:
        i = patroni.leader_index(self.ports)
        if i is None:
            raise StackError("the Patroni cluster has no leader now; see .paygo/ha/pg*/patroni.log")
        return self.members[i]

    def _ensure_database(self) -> None:
        """The platform's roles and its database, owned by the owner role, as on the plain stack."""
        import psycopg

        from devtools.postgres import OWNER, ensure_roles

        with psycopg.connect(self.ports.database_url("postgres"), autocommit=True, connect_timeout=5) as conn:
            ensure_roles(conn)
            if conn.execute("select 1 from pg_database where datname = 'paygo'").fetchone() is None:
                conn.execute(f"create database paygo owner {OWNER}")

    def running(self) -> bool:
        """Whether every server of the HA stack but the broker (which the plain stack shares) runs."""
        return all(s.running() for s in self.services if s is not self.mosquitto)

    def down(self, keep_broker: bool = False) -> list[str]:
        """Stop everything (``keep_broker``: but Mosquitto, which the plain stack shares)."""
        recorded = self.recorded_base()
        if recorded is not None and recorded != self.ports.base:  # ask the cluster where it listens
            return HAStack(self.settings, HAPorts(recorded)).down(keep_broker)
        stopped = []
        for s in [*self.sentinels, *self.redis, *([] if keep_broker else [self.mosquitto])]:
            if s.down():
                stopped.append(s.name)
        lead = patroni.leader_index(self.ports) if any(m.running() for m in self.members) else None
        order = sorted(self.members, key=lambda m: m.index == lead)  # the leader last
        for m in order:
            if m.down():
                stopped.append(m.name)
        if self.etcd.down():
            stopped.append(self.etcd.name)
        return stopped

    def wipe(self) -> None:
        """Stop the HA stack and delete everything under .paygo/ha (data, backups, configurations)."""
        import shutil

        self.down()
        if self.dir.exists():
            shutil.rmtree(self.dir)

    def status(self) -> list[ServiceStatus]:
        out = []
        view = patroni.cluster(self.ports) or {}
        roles = {m.get("name"): m.get("role") for m in view.get("members", [])}
        for s in self.services:
            st = s.status()
            if s.name in roles:
                st.detail = str(roles[s.name])
            elif isinstance(s, RedisNode) and st.state == "running":
                st.detail = {"master": "primary", "slave": "replica"}.get(s.role() or "", "")
            out.append(st)
        return out
