"""Where the HA stack listens: every port an offset from PAYGO_HA_PORT_BASE (default 36000), all on
127.0.0.1, so that one setting moves the whole cluster away from another one on the same machine."""

from __future__ import annotations

import os
from dataclasses import dataclass

from devtools.process import StackError

MEMBERS = 3  # PostgreSQL members under Patroni
SENTINELS = 3


@dataclass(frozen=True)
class HAPorts:
    base: int

    @classmethod
    def from_env(cls) -> HAPorts:
        raw = os.environ.get("PAYGO_HA_PORT_BASE", "36000")
        try:
            base = int(raw)
        except ValueError:
            raise StackError(f"PAYGO_HA_PORT_BASE must be a port number (got {raw!r})") from None
        if not 1024 <= base <= 65535 - 1000:
            raise StackError(f"PAYGO_HA_PORT_BASE must be between 1024 and 64535 (got {base})")
        return cls(base)

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
