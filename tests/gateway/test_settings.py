"""Settings from OKRYU_* variables."""

from __future__ import annotations

import pytest

from gateway.settings import Settings, SettingsError
from menus.screens import Budget


def test_settings_defaults_run_a_demo() -> None:
    settings = Settings.from_env({})
    assert settings.redis_url is None  # an embedded redis-server
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.budget_for("africastalking") == Budget(160, 80)
    assert settings.sms_provider == "log"


def test_settings_read_every_variable_they_name() -> None:
    settings = Settings.from_env(
        {
            "OKRYU_PORT": "9000",
            "OKRYU_REDIS_URL": "redis://example:6379/1",
            "OKRYU_SCREEN_BUDGETS": "africastalking=182/80, hubtel=140/70",
            "OKRYU_DEFAULT_LANGUAGE": "ko",
            "OKRYU_SMS_PROVIDER": "africastalking",
            "OKRYU_SMS_DISPATCH": "0",
        }
    )
    assert settings.port == 9000
    assert settings.redis_url == "redis://example:6379/1"
    assert settings.budget_for("africastalking") == Budget(182, 80)
    assert settings.budget_for("hubtel") == Budget(140, 70)
    assert settings.budget_for("nalo") == Budget(160, 80)
    assert settings.default_language == "ko"
    assert settings.sms_dispatch is False


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("OKRYU_PORT", "eighty", "OKRYU_PORT must be an integer"),
        ("OKRYU_SMS_PROVIDER", "pigeon", "OKRYU_SMS_PROVIDER must be"),
        ("OKRYU_DEFAULT_LANGUAGE", "fr", "OKRYU_DEFAULT_LANGUAGE must be en or ko"),
        ("OKRYU_SCREEN_BUDGETS", "africastalking=lots", "slug=GSM7/UCS2"),
    ],
)
def test_settings_refuse_bad_values_with_the_variable_named(
    name: str, value: str, says: str
) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.from_env({name: value})
