"""Where the HA stack listens: every port an offset from PAYGO_HA_PORT_BASE (default 26000), all on
127.0.0.1, so that one setting moves the whole cluster away from another one on the same machine.

The default lies below Linux's ephemeral range (32768-60999, net.ipv4.ip_local_port_range): a port in
that range may be the source port of any outgoing connection on the machine (or sit in TIME_WAIT
after one for 60 s), and then no server can bind it, SO_REUSEADDR or not. A busy machine (a CI run
making thousands of connections) holds hundreds of such ports at any moment; the HA stack's first
default (36000) lost a sentinel that way (``sentinel1 on port 36262 did not answer within 60s``)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from devtools.process import StackError, ephemeral_range

log = logging.getLogger(__name__)

DEFAULT_BASE = 26000
RESTORE_OFFSET = 450  # ``paygo backup restore`` starts the restored server on base + 450
SPAN = RESTORE_OFFSET + 1  # every port of the stack lies in base .. base + SPAN - 1

MEMBERS = 3  # PostgreSQL members under Patroni
SENTINELS = 3


@dataclass(frozen=True)
class HAPorts:
    base: int

    @classmethod
    def from_env(cls) -> HAPorts:
        raw = os.environ.get("PAYGO_HA_PORT_BASE", str(DEFAULT_BASE))
        try:
            base = int(raw)
        except ValueError:
            raise StackError(f"PAYGO_HA_PORT_BASE must be a port number (got {raw!r})") from None
        if not 1024 <= base <= 65535 - 1000:
            raise StackError(f"PAYGO_HA_PORT_BASE must be between 1024 and 64535 (got {base})")
        ports = cls(base)
        low, high = ephemeral_range()
        if ports.base <= high and ports.base + SPAN - 1 >= low:
            log.warning(
                "PAYGO_HA_PORT_BASE=%d puts HA ports in the ephemeral range %d-%d: a port held as an outgoing "
                "connection's source port delays or stops a server's start; prefer a base below %d",
                base, low, high, low - SPAN,
            )  # fmt: skip
        return ports

    def all(self) -> list[int]:
        """Every port the stack (and a restore beside it) listens on."""
        return sorted(
            [self.etcd_client, self.etcd_peer, self.restore]
            + [p for i in range(MEMBERS) for p in (self.pg(i), self.rest(i))]
            + [self.redis(i) for i in range(2)]
            + [self.sentinel(i) for i in range(SENTINELS)]
        )

    @property
    def restore(self) -> int:
        return self.base + RESTORE_OFFSET

    @property
    def etcd_client(self) -> int:
        return self.base + 379

    @property
    def etcd_peer(self) -> int:
        return self.base + 380

    def pg(self, i: int) -> int:
        return self.base + 432 + i

    def rest(self, i: int) -> int:
        return self.base + 8 + i

    def redis(self, i: int) -> int:
        """Redis servers: 0 starts as the primary, 1 as its replica (Sentinel may swap them)."""
        return self.base + 101 + i

    def sentinel(self, i: int) -> int:
        return self.base + 261 + i

    def database_url(self, dbname: str = "paygo", user: str = "paygo") -> str:
        """libpq's multi-host string: the first member that takes writes, whichever it is now."""
        hosts = ",".join(f"127.0.0.1:{self.pg(i)}" for i in range(MEMBERS))
        return f"postgresql://{user}@{hosts}/{dbname}?target_session_attrs=read-write"

    def standby_url(self, dbname: str = "paygo", user: str = "paygo") -> str:
        """For reads that may lag by seconds: a standby when one answers, else the primary."""
        hosts = ",".join(f"127.0.0.1:{self.pg(i)}" for i in range(MEMBERS))
        return f"postgresql://{user}@{hosts}/{dbname}?target_session_attrs=prefer-standby"

    def redis_url(self, db: int = 0) -> str:
        """kombu's Sentinel transport: every sentinel, the master's name in the transport options."""
        return ";".join(f"sentinel://127.0.0.1:{self.sentinel(i)}/{db}" for i in range(SENTINELS))
