"""The one settings object of the platform: every process reads its configuration from here.

Values come from environment variables with the ``PAYGO_`` prefix (or a ``.env`` file). The
defaults point at the project-owned local stack that ``paygo stack up`` starts under ``.paygo/``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "development-only-key-change-me-in-production"

Port = int


class SettingsError(Exception):
    """A setting has a value the platform cannot use; the message names the setting."""


SERVICE_ROLES = ("ingest", "delivery")  # MQTT logins of the services, see Settings.service_login


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYGO_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # Where the local stack keeps its data, configuration, logs and pid files.
    home: Path = Path(".paygo")

    # Ports of the project-owned local servers (chosen not to clash with system services).
    pg_port: Port = Field(default=55432, ge=1, le=65535)
    mqtt_port: Port = Field(default=18830, ge=1, le=65535)
    redis_port: Port = Field(default=16379, ge=1, le=65535)
    api_port: Port = Field(default=18000, ge=1, le=65535)
    device_api_port: Port = Field(default=18001, ge=1, le=65535)
    # The broker's device-facing listener: every unit logs in with its own credentials and the ACL
    # confines it to its own topics. The listener on PAYGO_MQTT_PORT is for the platform's services.
    device_mqtt_port: Port = Field(default=18883, ge=1, le=65535)

    # Where the platform's processes connect. Left unset, they point at the local stack.
    database_url: str = ""
    mqtt_host: str = "127.0.0.1"
    # One login for every service, when the broker is not the local stack's. Left unset, each
    # service logs in as its own role (SERVICE_ROLES) with a password derived from the secret key,
    # and the local broker's ACL gives each role only what it needs (ingest only reads).
    mqtt_username: str = ""
    mqtt_password: str = ""
    redis_url: str = ""
    # The broker's password file for units and how to make the broker re-read it (``paygo devices
    # provision``). Left unset, the local stack's: PAYGO_HOME/mosquitto/devices.passwd and a SIGHUP
    # to the pid in PAYGO_HOME/mosquitto/mosquitto.pid. For a broker run by systemd, for example:
    # PAYGO_BROKER_RELOAD_COMMAND="systemctl reload mosquitto".
    broker_password_file: Path | None = None
    broker_pid_file: Path | None = None
    broker_reload_command: str = ""
    # The wire protocol's topic root (DESIGN §5); only tests and shared brokers change it.
    mqtt_topic_root: str = "paygo/v1/units"

    # Celery: a task a killed worker had taken is handed out again after this many seconds, so it
    # must exceed the longest task (a KPI snapshot of a million units takes about a minute).
    task_visibility_timeout: int = Field(default=3600, ge=5)
    # Company data for the KPI snapshots (kpi/SPEC.md §1.3: EBITDA, fx rates, balance sheet).
    kpi_company_file: Path | None = None

    # Mobile money. M-Pesa Paybill shortcodes we own (comma-separated) and their currency; the
    # currencies MoMo collects in; per-provider secrets of the signed generic webhook, as JSON
    # ({"wing": "...", "aba": "..."}).
    mpesa_shortcodes: str = "600638"
    mpesa_currency: str = "KES"
    momo_currencies: str = "UGX,RWF,XOF"
    webhook_secrets: dict[str, str] = Field(default_factory=dict)
    # MTN MoMo Collections API, for polling requests that are still PENDING (the callback is never retried).
    momo_base_url: str = "https://sandbox.momodeveloper.mtn.com"
    momo_subscription_key: str = ""
    momo_api_user: str = ""
    momo_api_key: str = ""
    momo_target_environment: str = "sandbox"

    # Hostile input at the payment doors. M-Pesa's C2B callbacks carry no signature: the app accepts
    # them only from these sources (comma-separated addresses or networks, e.g. Safaricom's published
    # ranges; "*" accepts any, which production refuses), the client address being the one the
    # trusted proxies (comma-separated) put in X-Forwarded-For. An optional secret path segment
    # serves them at /payments/mpesa/<secret>/c2b/... as well.
    mpesa_allowed_sources: str = "*"
    trusted_proxies: str = "127.0.0.1,::1"
    mpesa_path_secret: str = ""
    # A payment above its currency's ceiling (in major units, JSON map) is held for finance to
    # review instead of credited, as is one dated more than this far from now.
    payment_ceilings: dict[str, int] = Field(
        default_factory=lambda: {"KES": 250_000, "UGX": 10_000_000, "RWF": 3_000_000, "XOF": 1_500_000,
                                 "TZS": 5_000_000, "USD": 2_000}  # fmt: skip
    )
    payment_time_window_hours: int = Field(default=72, ge=1)
    # The largest body a callback (or /dd) may have; larger ones are refused with 413 unread.
    max_callback_bytes: int = Field(default=64 * 1024, ge=1024)

    # Encrypts device secrets (OpenPAYGO keys, MQTT passwords) at rest.
    secret_key: str = DEV_SECRET_KEY

    # Staff logins. A session ends after this long without a request, and in any case this long after
    # the login; an account is locked for a while after this many failures in a row, and an address
    # that fails this often within the lock-out window is refused too (password guessing).
    session_idle_minutes: int = Field(default=30, ge=1)
    session_max_hours: int = Field(default=12, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    login_address_max_failures: int = Field(default=20, ge=1)
    login_lockout_minutes: int = Field(default=15, ge=1)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def service_login(self, role: str) -> tuple[str, str]:
        """(username, password) of a platform service on the services listener."""
        if self.mqtt_username:
            return self.mqtt_username, self.mqtt_password
        derived = hmac.new(self.secret_key.encode(), f"mqtt-service:{role}".encode(), hashlib.sha256).hexdigest()
        return role, derived

    @model_validator(mode="after")
    def _derive_and_check(self) -> Settings:
        if not self.database_url:
            self.database_url = f"postgresql://paygo@127.0.0.1:{self.pg_port}/paygo"
        if not self.redis_url:
            self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        if not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("PAYGO_DATABASE_URL must start with postgresql://")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("PAYGO_REDIS_URL must start with redis:// or rediss://")
        if self.environment == "production" and (self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32):
            raise ValueError("PAYGO_SECRET_KEY must be set to a random value of at least 32 characters in production")
        return self

    @property
    def home_dir(self) -> Path:
        return self.home.resolve()

    @property
    def device_password_file(self) -> Path:
        return self.broker_password_file or self.home_dir / "mosquitto" / "devices.passwd"

    @property
    def broker_pid_path(self) -> Path:
        return self.broker_pid_file or self.home_dir / "mosquitto" / "mosquitto.pid"


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = first.get("loc") or ()
    if loc:
        name = "PAYGO_" + str(loc[0]).upper()
        got = first.get("input")
        return f"{name}: {first['msg']} (got {got!r})"
    return str(first["msg"]).removeprefix("Value error, ")


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation failure into one line that names the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        raise SettingsError(_one_line(err)) from None


@functools.cache
def get_settings() -> Settings:
    return load_settings()
