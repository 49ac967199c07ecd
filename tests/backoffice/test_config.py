import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from backoffice.config import DEV_SECRET_KEY, SettingsError, derive_key, load_settings

STRONG = "Vq7-hN2pXw_k9RtLz4mYc8Bd3Gf6Js1Ua5Ee0Oi"  # 39 characters of url-safe base64


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets: no PAYGO_* of the shell, no .env of the working directory."""
    for var in ("ENVIRONMENT", "SECRET_KEY", "OLD_SECRET_KEYS", "DATABASE_URL", "REDIS_URL", "MQTT_HOST"):
        monkeypatch.delenv(f"PAYGO_{var}", raising=False)
    # Production needs M-Pesa's sources named (tested on its own below); these tests are about the rest.
    monkeypatch.setenv("PAYGO_MPESA_ALLOWED_SOURCES", "196.201.214.0/24,196.201.213.0/24")
    monkeypatch.chdir(tmp_path)


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for port in ("REDIS", "MQTT"):  # a run on other ports (beside a developer's stack) sets these
        monkeypatch.delenv(f"PAYGO_{port}_PORT", raising=False)
    monkeypatch.setenv("PAYGO_PG_PORT", "6000")
    s = load_settings()
    assert s.database_url == "postgresql://paygo_owner@127.0.0.1:6000/paygo"
    assert s.redis_url == "redis://127.0.0.1:16379/0"
    assert s.mqtt_port == 18830
    assert s.environment == "development"  # unset, on the local stack with the development key


def test_explicit_urls_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYGO_ENVIRONMENT", "development")
    monkeypatch.setenv("PAYGO_DATABASE_URL", "postgresql://app@db.example:5432/paygo")
    monkeypatch.setenv("PAYGO_REDIS_URL", "redis://cache:6379/2")
    s = load_settings()
    assert s.database_url == "postgresql://app@db.example:5432/paygo"
    assert s.redis_url == "redis://cache:6379/2"


@pytest.mark.parametrize(
    ("var", "value", "named"),
    [
        ("PAYGO_PG_PORT", "not-a-port", "PAYGO_PG_PORT"),
        ("PAYGO_MQTT_PORT", "70000", "PAYGO_MQTT_PORT"),
        ("PAYGO_ENVIRONMENT", "staging", "PAYGO_ENVIRONMENT"),
        ("PAYGO_DATABASE_URL", "mysql://x", "PAYGO_DATABASE_URL"),
    ],
)
def test_a_bad_value_fails_with_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, named: str
) -> None:
    monkeypatch.setenv("PAYGO_ENVIRONMENT", "test")
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert named in message
    assert "\n" not in message


def test_production_refuses_the_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYGO_ENVIRONMENT", "production")
    with pytest.raises(SettingsError, match="PAYGO_SECRET_KEY"):
        load_settings()
    monkeypatch.setenv("PAYGO_SECRET_KEY", STRONG)
    assert load_settings().environment == "production"


@pytest.mark.parametrize(
    "weak",
    [
        "short-but-random-Xq9",  # under 32 characters
        "x" * 40,  # one character
        "ab" * 20,  # a repeated pattern
        "Tq7-" * 10,  # a repeated pattern of varied characters
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaXyZ9",  # almost one character
        "correct horse battery staple unicorn rainbow",  # words only
        "CorrectHorseBatteryStapleUnicornRainbow",  # words only, run together
        "31415926535897932384626433832795",  # 32 digits: 106 bits
        "my-production-key-CHANGEME-2026-Xq9zT",  # a placeholder
        DEV_SECRET_KEY.upper(),  # the development key
    ],
)
def test_production_refuses_a_weak_secret_key(monkeypatch: pytest.MonkeyPatch, weak: str) -> None:
    monkeypatch.setenv("PAYGO_ENVIRONMENT", "production")
    monkeypatch.setenv("PAYGO_SECRET_KEY", weak)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value).startswith("PAYGO_SECRET_KEY is too weak for production") and "\n" not in str(info.value)


@pytest.mark.parametrize("make", [lambda: secrets.token_urlsafe(32), lambda: secrets.token_hex(32), lambda: STRONG])
def test_production_takes_a_generated_key(make: Callable[[], str]) -> None:
    for _ in range(200):
        key = make()
        assert load_settings(environment="production", secret_key=key).secret_key == key


def test_production_may_keep_a_weak_old_key_to_rotate_away_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYGO_ENVIRONMENT", "production")
    monkeypatch.setenv("PAYGO_SECRET_KEY", STRONG)
    monkeypatch.setenv("PAYGO_OLD_SECRET_KEYS", DEV_SECRET_KEY)
    assert load_settings().secret_key.old == (DEV_SECRET_KEY,)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("PAYGO_SECRET_KEY", STRONG),
        ("PAYGO_OLD_SECRET_KEYS", STRONG),
        ("PAYGO_DATABASE_URL", "postgresql://app@db.example:5432/paygo"),
        ("PAYGO_DATABASE_URL", "postgresql://app@/paygo?host=10.0.0.5"),
        ("PAYGO_REDIS_URL", "redis://cache.internal:6379/0"),
        ("PAYGO_MQTT_HOST", "broker.example"),
    ],
)
def test_an_unstated_environment_is_refused_outside_a_developers_machine(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    """Unset, PAYGO_ENVIRONMENT means development; a process with a key of its own or a server
    elsewhere is not a developer's, so it must say which environment it is."""
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("PAYGO_ENVIRONMENT must be set") and var in message and "\n" not in message
    monkeypatch.setenv("PAYGO_ENVIRONMENT", "development")  # stated, it is taken as it is
    assert load_settings().environment == "development"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("PAYGO_DATABASE_URL", "postgresql://paygo@localhost:55432/paygo"),
        ("PAYGO_DATABASE_URL", "postgresql:///paygo?host=/var/run/postgresql"),
        ("PAYGO_REDIS_URL", "redis://[::1]:16379/0"),
        ("PAYGO_MQTT_HOST", "127.0.0.2"),
        ("PAYGO_SECRET_KEY", DEV_SECRET_KEY),
    ],
)
def test_an_unstated_environment_is_development_on_this_machine(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    assert load_settings().environment == "development"


def test_service_logins_are_derived_from_the_secret_key() -> None:
    a = load_settings(environment="test", secret_key=STRONG)
    b = load_settings(environment="test", secret_key=STRONG[::-1])
    ingest, delivery = a.service_login("ingest"), a.service_login("delivery")
    assert ingest[0] == "ingest" and delivery[0] == "delivery"
    assert len(ingest[1]) == 64 and int(ingest[1], 16) >= 0
    assert ingest[1] != delivery[1] and ingest[1] != b.service_login("ingest")[1]
    assert ingest == a.service_login("ingest")  # the broker's file and the service agree across restarts
    assert ingest[1] == derive_key(STRONG, "mqtt-service/ingest").hex()
    assert ingest[1] != derive_key(STRONG, "device-secrets/fernet").hex()  # a context of its own
    assert load_settings(environment="test", mqtt_username="svc", mqtt_password="pw").service_login("ingest") == (
        "svc",
        "pw",
    )


def test_production_refuses_to_take_mpesa_callbacks_from_anyone(monkeypatch: pytest.MonkeyPatch) -> None:
    key = secrets.token_urlsafe(32)
    monkeypatch.setenv("PAYGO_MPESA_ALLOWED_SOURCES", "*")
    with pytest.raises(SettingsError, match="PAYGO_MPESA_ALLOWED_SOURCES must list"):
        load_settings(environment="production", secret_key=key)
    assert load_settings(environment="development").mpesa_allowed_sources == "*"  # development: anyone local
    monkeypatch.setenv("PAYGO_MPESA_ALLOWED_SOURCES", "196.201.214.0/24")
    assert load_settings(environment="production", secret_key=key).mpesa_allowed_sources == "196.201.214.0/24"


def test_a_bad_secret_setting_is_named_but_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYGO_WEBHOOK_SECRETS", '{"wing": ["s3cr3t-value"]}')
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "PAYGO_WEBHOOK_SECRETS" in str(info.value) and "s3cr3t-value" not in str(info.value)
    monkeypatch.setenv("PAYGO_WEBHOOK_SECRETS", "{}")
    monkeypatch.setenv("PAYGO_API_PORT", "not-a-port")
    with pytest.raises(SettingsError, match="got 'not-a-port'"):  # other values are shown, to help
        load_settings()
