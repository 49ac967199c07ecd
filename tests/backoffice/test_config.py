import pytest

from backoffice.config import SettingsError, load_settings


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYGO_PG_PORT", "6000")
    s = load_settings()
    assert s.database_url == "postgresql://paygo@127.0.0.1:6000/paygo"
    assert s.redis_url == "redis://127.0.0.1:16379/0"
    assert s.mqtt_port == 18830


def test_explicit_urls_win(monkeypatch: pytest.MonkeyPatch) -> None:
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
    monkeypatch.setenv("PAYGO_SECRET_KEY", "x" * 40)
    assert load_settings().environment == "production"
