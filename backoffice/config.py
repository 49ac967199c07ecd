"""The one settings object of the platform: every process reads its configuration from here.

Values come from environment variables with the ``PAYGO_`` prefix (or a ``.env`` file). The
defaults point at the project-owned local stack that ``paygo stack up`` starts under ``.paygo/``.
Over 400 lines because it is the one settings object (CONVENTIONS 4): every setting, its comment and
its check in one place.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qs, urlsplit

import phonenumbers
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backoffice.clock import DEFAULT_TIMEZONE, company_zone
from backoffice.hours import HoursError, QuietHours, WorkingHours, parse_holidays
from backoffice.secret_strength import DEV_SECRET_KEY, weak_secret_key

Port = int


class SettingsError(Exception):
    """A setting has a value the platform cannot use; the message names the setting."""


SERVICE_ROLES = ("ingest", "delivery")  # MQTT logins of the services, see Settings.service_login

# The PostgreSQL role of each service (backoffice/database_roles.sql, deploy/database.md): the owner runs
# the migrations; each service logs in as its own role, which holds grants and owns nothing.
DATABASE_ROLES = {
    "owner": "paygo_owner",
    "web": "paygo_web",
    "ingest": "paygo_ingest",
    "worker": "paygo_worker",
    "delivery": "paygo_delivery",
}


# Every key the platform uses is derived from PAYGO_SECRET_KEY by HKDF-SHA256 with a context of its
# own (device secrets at rest and their key ids in backoffice/crypto.py, each service's MQTT
# password): one derived key tells nothing of the others, nor of the secret key.
KDF_SALT = b"paygo-platform"


def derive_key(secret_key: str, context: str, length: int = 32) -> bytes:
    """``length`` bytes for one use (``context``) of the secret key."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=KDF_SALT, info=f"paygo/{context}".encode())
    return hkdf.derive(str(secret_key).encode())


class SecretKey(str):
    """PAYGO_SECRET_KEY (the string itself), carrying PAYGO_OLD_SECRET_KEYS: the earlier keys that
    backoffice.crypto still accepts for decryption while ``paygo secrets rotate`` moves everything to
    the current one. A str, so that it reaches crypto through every ``secret_key: str`` parameter
    unchanged; a plain str is a key with no earlier ones."""

    old: tuple[str, ...]

    def __new__(cls, current: str, old: Iterable[str] = ()) -> SecretKey:
        key = super().__new__(cls, current)
        key.old = tuple(k for k in dict.fromkeys(old) if k != current)
        return key


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYGO_", env_file=".env", extra="ignore")

    # Left unset it means development, which only the local stack may be: see _check_secret_and_environment.
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
    # TLS on the outside doors (PAYGO_TLS=1, docs/deployment.md): certificates in PAYGO_TLS_DIR (default
    # PAYGO_HOME/tls), the device listener over TLS, nginx's HTTPS ports for the web app and the device API.
    tls: bool = False
    tls_dir: Path | None = None
    https_port: Port = Field(default=18443, ge=1, le=65535)
    device_https_port: Port = Field(default=18444, ge=1, le=65535)

    # Where the platform's processes connect. Left unset, they point at the local stack. A service logs in
    # to PostgreSQL as its own role (DATABASE_ROLES, Settings.database_url_for): the user in this URL is
    # replaced by the service's role, and its password is kept only when the URL names that role already
    # (production gives each process the URL of its own role; other passwords come from libpq's
    # password file, ~/.pgpass). Tools and migrations use the URL as it is.
    database_url: str = ""
    # Where read-only work that may lag by seconds reads (docs/operations.md, "Reads that may lag": KPI
    # pages and API, fleet-health windows, the call centre's unit data): on the HA stack libpq's
    # multi-host string with target_session_attrs=prefer-standby. Unset: PAYGO_DATABASE_URL.
    database_read_url: str = ""
    mqtt_host: str = "127.0.0.1"
    # One login for every service, when the broker is not the local stack's. Left unset, each
    # service logs in as its own role (SERVICE_ROLES) with a password derived from the secret key,
    # and the local broker's ACL gives each role only what it needs (ingest only reads).
    mqtt_username: str = ""
    mqtt_password: str = ""
    redis_url: str = ""
    # With Redis behind Sentinel, PAYGO_REDIS_URL lists the sentinels
    # (sentinel://127.0.0.1:26379/0;sentinel://...) and this names the primary they watch.
    redis_sentinel_master: str = "paygo"
    # The broker's password file for units and how to make the broker re-read it (``paygo devices
    # provision``). Left unset, the local stack's: PAYGO_HOME/mosquitto/devices.passwd and a SIGHUP
    # to the pid in PAYGO_HOME/mosquitto/mosquitto.pid. For a broker run by systemd, for example:
    # PAYGO_BROKER_RELOAD_COMMAND="systemctl reload mosquitto".
    broker_password_file: Path | None = None
    broker_pid_file: Path | None = None
    broker_reload_command: str = ""
    # The device listener runs Mosquitto's dynamic-security plugin (deploy/README.md): provisioning gives it
    # each unit's login and a role of the unit's own topics, subscriptions included. Off: the password file only.
    broker_dynamic_security: bool = True
    # The wire protocol's topic root (docs/wire_protocol.md); only tests and shared brokers change it.
    mqtt_topic_root: str = "paygo/v1/units"
    # Ingest slots (ingest/slots.py, docs/deployment.md): the broker sessions ("<group>-slot-<n>") the workers
    # share, each leased in PostgreSQL; a lease not renewed for ingest_lease_seconds is taken over.
    ingest_slots: int = Field(default=8, ge=1, le=1024)
    ingest_lease_seconds: float = Field(default=30.0, ge=1.0, le=3600.0)
    ingest_group: str = Field(default="ingest", pattern=r"^[A-Za-z0-9_-]{1,40}$")

    # Celery: a task a killed worker had taken is handed out again after this many seconds, so it
    # must exceed the longest task (a KPI snapshot of a million units takes about a minute).
    task_visibility_timeout: int = Field(default=3600, ge=5)
    # Company data for the KPI snapshots (docs/kpi_definitions.md §1.3: EBITDA, fx rates, balance sheet).
    kpi_company_file: Path | None = None
    # Portfolio quality (docs/kpi_definitions.md §Q2): days past due after which a unit is written off; unset,
    # the company file's write_off_dpd, else 180.
    kpi_write_off_dpd: int | None = Field(default=None, ge=0, le=36_500)

    # Fleet health (issue 16): the alert rules' thresholds (backoffice/health/rules.py Thresholds,
    # docs/fleet_health.md). Left unset, each takes the default tuned on the simulator's seed 1.
    health_soh_floor: float | None = None  # battery degrading: SoH below this share of nameplate
    health_soh_drop: float | None = None  # ... or fallen by this much in health_soh_drop_days
    health_soh_drop_days: int | None = None
    health_deep_soc: float | None = None  # chronic deep discharge: a day whose lowest charge is below this
    health_cutoff_days: int | None = None  # ... on this many of the last 7 days
    health_no_full_days: int | None = None  # ... or this many days in a row without a full charge
    health_hot_c: float | None = None  # over-temperature: battery above this, °C
    health_hot_hours: float | None = None  # ... this many hours a day
    health_hot_days: int | None = None  # ... on this many of the last 7 days
    health_pv_fraction: float | None = None  # PV underperformance: share of the neighbours' yield per Wp
    health_pv_days: int | None = None  # ... on this many of the last 7 days
    health_pv_clear_fraction: float | None = None  # ... or PV clearness while charging below this share of the median
    health_offline_days: int | None = None  # offline: whole days without a reading
    health_moved_away_days: int | None = None  # ... silent this long: likely moved away
    health_tamper_share: float | None = None  # tamper: share of the harvest that no meter saw
    health_tamper_wh: float | None = None  # ... and at least this many Wh a day
    health_usage_fraction: float | None = None  # usage drop: last week below this share of the baseline
    health_holiday_fraction: float | None = None  # ... a day below this share is a day away
    health_holiday_days: int | None = None  # ... and this many days away make a holiday, not a drop
    health_locked_days: list[int] | None = None  # locked too long: the escalation, e.g. [3, 7, 30]
    health_small_cutoff_days: int | None = None  # system too small: cut-off days in 7 while paid up
    health_small_pv_ratio: float | None = None  # ... with a panel yielding this share of the neighbours' best
    health_clear_days: int | None = None  # an alert closes after its condition is clear this many days
    health_offline_clear_days: int | None = None  # ... offline alerts
    health_locked_clear_days: int | None = None  # ... locked-too-long alerts
    health_reopen_days: int | None = None  # ... and the same alert re-opens if it returns within this many

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
        default_factory=lambda: {
            "KES": 250_000,
            "UGX": 10_000_000,
            "RWF": 3_000_000,
            "XOF": 1_500_000,
            "TZS": 5_000_000,
            "USD": 2_000,
        }
    )
    payment_time_window_hours: int = Field(default=72, ge=1)
    # Where providers reach the web app (the callback URL given to MTN MoMo with each request to pay);
    # unset: the local app, http://127.0.0.1:PAYGO_API_PORT.
    public_url: str = ""
    # The largest body a callback (or /dd) may have; larger ones are refused with 413 unread.
    max_callback_bytes: int = Field(default=64 * 1024, ge=1024)

    # The root of every key (derive_key): device secrets (OpenPAYGO keys, MQTT passwords) at rest, the
    # services' MQTT passwords. Production refuses a weak one (weak_secret_key). The earlier keys
    # (comma-separated) still decrypt while `paygo secrets rotate` moves everything to the current one.
    secret_key: str = DEV_SECRET_KEY
    old_secret_keys: str = ""

    # Staff logins. A session ends after this long without a request, and in any case this long after
    # the login; an account is locked for a while after this many failures in a row, and an address
    # that fails this often within the lock-out window is refused too (password guessing).
    session_idle_minutes: int = Field(default=30, ge=1)
    session_max_hours: int = Field(default=12, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    login_address_max_failures: int = Field(default=20, ge=1)
    login_lockout_minutes: int = Field(default=15, ge=1)

    # The call centre. Phone numbers typed without a country prefix (a leading 0, or none) are read as
    # numbers of this region (ISO 3166 code; the demo company is in Kenya). Goodwill days granted at
    # once: at most this many by the call centre, and by an administrator.
    default_phone_region: str = "KE"
    # Every country the company serves (ISO 3166 codes, comma-separated, e.g. "KE,KH"): the search box
    # reads a number typed in national form (a leading 0, or none) as a number of each of them, the
    # default region first. Empty: the default region only.
    phone_regions: str = ""
    goodwill_max_days: int = Field(default=7, ge=0, le=995)
    goodwill_admin_max_days: int = Field(default=30, ge=0, le=995)
    # SMS to customers (issue 14, backoffice/sms): a reminder goes out this many days before a contract's
    # credit runs out (comma-separated offsets, each sent once per credit period), by the daily job.
    reminder_days: str = Field(default="3,1", pattern=r"^\s*(\d{1,3}\s*(,\s*\d{1,3}\s*)*)?$")
    # Field operations (issue 15). The SLA of ticket kinds in hours, from opening to closing, as a JSON
    # map, e.g. {"battery_swap": 24}; a kind left out keeps its default (backoffice/tickets/service.py:
    # repair 72, battery_swap 48, installation 120, repossession 168, customer_education 72). A ticket
    # still open past its due time, or closed after it, shows as breached.
    ticket_sla_hours: dict[str, Annotated[int, Field(ge=1, le=24 * 365)]] = Field(default_factory=dict)
    # Field and service hours (issue 21, backoffice/hours.py, docs/field_service_hours.md). Ticket SLAs count
    # the company's working hours on its wall clock (PAYGO_TIMEZONE): a weekly schedule such as the default
    # "Mon-Sat 08:00-18:00" (parts joined by ";": "Mon-Fri 08:00-17:00; Sat 09:00-13:00"), or "24/7" for
    # a clock that never stops; PAYGO_HOLIDAYS are whole days off (comma-separated ISO dates; none unless
    # set). Reminders and notices by SMS wait out the quiet hours (default "20:00-07:00" on the company's
    # wall clock; empty: never quiet); tokens and receipts are never held. A unit command without an
    # acknowledgement is sent again after delivery_retry_seconds, doubling up to delivery_retry_max_seconds,
    # and fails (shown on the unit page, for the call centre to resend) after delivery_max_attempts.
    business_hours: str = "Mon-Sat 08:00-18:00"
    holidays: str = ""
    sms_quiet_hours: str = "20:00-07:00"
    delivery_max_attempts: int = Field(default=10, ge=1, le=100)
    delivery_retry_seconds: int = Field(default=60, ge=1)
    delivery_retry_max_seconds: int = Field(default=3600, ge=1)
    # OpenPAYGO Metrics (issue 17). A request may come without "auth" with an HS256 JWT
    # (Authorization: Bearer ...) for registration and testing: signed with this secret (unset: one
    # derived from secret_key), expiring within metrics_jwt_max_hours. GET /device_data answers at most
    # metrics_max_readings readings.
    metrics_jwt_secret: str = ""
    metrics_jwt_max_hours: int = Field(default=24, ge=1)
    metrics_max_readings: int = Field(default=10_000, ge=1)

    # The company's time zone (IANA name): where "a day" means the company's day (KPI as-of dates,
    # reminders, SLAs, quiet hours, the nightly jobs). backoffice/clock.py reads the same variable.
    timezone: str = DEFAULT_TIMEZONE

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def service_login(self, role: str) -> tuple[str, str]:
        """(username, password) of a platform service on the services listener."""
        if self.mqtt_username:
            return self.mqtt_username, self.mqtt_password
        return role, derive_key(self.secret_key, f"mqtt-service/{role}").hex()

    @property
    def read_url(self) -> str:
        """PAYGO_DATABASE_READ_URL, or PAYGO_DATABASE_URL when it is unset (resolved on use, so that a
        copy of the settings with another database_url reads that database)."""
        return self.database_read_url or self.database_url

    def database_url_for(self, service: str, read: bool = False) -> str:
        """The connection string of ``service`` (a key of DATABASE_ROLES): PAYGO_DATABASE_URL (``read``:
        the read URL) as the service's own role."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(self.read_url if read else self.database_url)
        role = DATABASE_ROLES[service]
        if params.get("user") != role:
            params["user"] = role
            params.pop("password", None)  # another role's password is not this one's
        return make_conninfo("", **params)

    def broker_admin_password(self) -> str:
        """The password of the broker's administrator on the device listener (its dynamic-security
        plugin: ``paygo devices provision`` adds and removes the units' logins through it)."""
        return derive_key(self.secret_key, "mqtt-broker-admin").hex()

    @model_validator(mode="after")
    def _derive_and_check(self) -> Settings:
        if not self.database_url:
            self.database_url = f"postgresql://{DATABASE_ROLES['owner']}@127.0.0.1:{self.pg_port}/paygo"
        if not self.redis_url:
            self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        if not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("PAYGO_DATABASE_URL must start with postgresql://")
        if self.database_read_url and not self.database_read_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("PAYGO_DATABASE_READ_URL must start with postgresql://")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://", "sentinel://")):
            raise ValueError("PAYGO_REDIS_URL must start with redis://, rediss:// or sentinel://")
        return self

    @model_validator(mode="after")
    def _check_timezone(self) -> Settings:
        company_zone(self.timezone)  # raises ClockError (a ValueError) naming the variable
        return self

    @model_validator(mode="after")
    def _check_hours(self) -> Settings:
        for name, read in (("PAYGO_HOLIDAYS", lambda: parse_holidays(self.holidays)),
                           ("PAYGO_BUSINESS_HOURS", lambda: self.working_hours),
                           ("PAYGO_SMS_QUIET_HOURS", lambda: self.quiet_hours)):  # fmt: skip
            try:
                read()
            except HoursError as err:
                raise ValueError(f"{name}: {err}") from None
        if self.working_hours is not None and not self.working_hours.week:
            raise ValueError("PAYGO_BUSINESS_HOURS has no working day")
        return self

    @property
    def working_hours(self) -> WorkingHours | None:
        """PAYGO_BUSINESS_HOURS and PAYGO_HOLIDAYS in the company's time zone; None: round the clock."""
        return WorkingHours.parse(self.business_hours, self.holidays, company_zone(self.timezone))

    @property
    def quiet_hours(self) -> QuietHours | None:
        """PAYGO_SMS_QUIET_HOURS in the company's time zone; None: never quiet."""
        return QuietHours.parse(self.sms_quiet_hours, company_zone(self.timezone))

    @model_validator(mode="after")
    def _check_phone_region(self) -> Settings:
        region = self.default_phone_region.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"PAYGO_DEFAULT_PHONE_REGION must be a two-letter country code such as KE, UG or KH "
                f"(got {self.default_phone_region!r})"
            )
        self.default_phone_region = region
        regions = [r.strip().upper() for r in self.phone_regions.split(",") if r.strip()]
        unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(
                f"PAYGO_PHONE_REGIONS must list two-letter country codes separated by commas, such as KE,KH "
                f"(got {self.phone_regions!r}: {', '.join(unknown)} unknown)"
            )
        self.phone_regions = ",".join(dict.fromkeys(regions))
        return self

    @property
    def search_phone_regions(self) -> list[str]:
        """The regions a number typed in national form is read in: the default one, then PAYGO_PHONE_REGIONS."""
        return list(dict.fromkeys([self.default_phone_region, *filter(None, self.phone_regions.split(","))]))

    @model_validator(mode="after")
    def _check_secret_and_environment(self) -> Settings:
        """PAYGO_ENVIRONMENT unset means development, which runs only on this machine with the development
        key: a process given a secret key or a server elsewhere must say which environment it is."""
        old = [k.strip() for k in self.old_secret_keys.split(",") if k.strip()]
        if "environment" not in self.model_fields_set:
            stated = self._deployment_sign(old)
            if stated:
                raise ValueError(
                    f"PAYGO_ENVIRONMENT must be set (development, test or production) since {stated}; "
                    "unset, it means development, which runs on the local stack with the development key"
                )
        if self.environment == "production" and (weak := weak_secret_key(self.secret_key)):
            raise ValueError(
                f"PAYGO_SECRET_KEY is too weak for production: {weak}; make one with "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if self.environment == "production" and self.mpesa_allowed_sources.strip() == "*":
            raise ValueError(
                "PAYGO_MPESA_ALLOWED_SOURCES must list the addresses M-Pesa calls back from (Safaricom's "
                "published ranges) in production: '*' would let anyone post a confirmation"
            )
        self.secret_key = SecretKey(self.secret_key, old)
        return self

    def _deployment_sign(self, old_keys: list[str]) -> str | None:
        """What says this process is not a developer's (a key of its own, a server elsewhere), if anything."""
        if self.secret_key != DEV_SECRET_KEY:
            return "PAYGO_SECRET_KEY is set"
        if old_keys:
            return "PAYGO_OLD_SECRET_KEYS is set"
        for name, urls in (("PAYGO_DATABASE_URL", self.database_url), ("PAYGO_DATABASE_READ_URL", self.read_url),
                           ("PAYGO_REDIS_URL", self.redis_url)):  # fmt: skip
            for url in urls.split(";"):  # several sentinels
                parts = urlsplit(url)
                # A multi-host netloc (libpq: h1:p1,h2:p2) and host= in the query list every server.
                hosts = [h.rsplit("@", 1)[-1] for h in parts.netloc.split(",")] if "," in parts.netloc else []
                hosts = [h.rsplit(":", 1)[0] if h.count(":") == 1 else h for h in hosts]
                for host in [parts.hostname, *hosts, *",".join(parse_qs(parts.query).get("host", [])).split(",")]:
                    if host and not _this_machine(host):
                        return f"{name} points at {host}"
        if not _this_machine(self.mqtt_host):
            return f"PAYGO_MQTT_HOST is {self.mqtt_host}"
        return None

    @property
    def reminder_offsets(self) -> list[int]:
        """PAYGO_REMINDER_DAYS as days before the end of credit, largest first (0 is never a reminder)."""
        return sorted({int(d) for d in self.reminder_days.split(",") if d.strip() and int(d) > 0}, reverse=True)

    @property
    def home_dir(self) -> Path:
        return self.home.resolve()

    @property
    def device_password_file(self) -> Path:
        return self.broker_password_file or self.home_dir / "mosquitto" / "devices.passwd"

    @property
    def broker_pid_path(self) -> Path:
        return self.broker_pid_file or self.home_dir / "mosquitto" / "mosquitto.pid"


def _this_machine(host: str | None) -> bool:
    """A loopback address, localhost or a Unix socket (no host, or a path)."""
    if not host or host.startswith("/") or host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = first.get("loc") or ()
    if loc:
        name = "PAYGO_" + str(loc[0]).upper()
        if any(word in name for word in ("SECRET", "PASSWORD", "KEY")):  # never echo a secret to the logs
            return f"{name}: {first['msg']}"
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
