"""Settings from OKRYU_* variables."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from gateway import keys
from gateway.app import create_app
from gateway.hop import SAVE_MARGIN
from gateway.settings import HOP_DEADLINES, Settings, SettingsError
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


PASSWORD = "s3cret-pw"  # in every database URL below: never in a message
PG = f"postgresql+asyncpg://okryu:{PASSWORD}@db.example/okryu"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("OKRYU_PORT", "eighty", "OKRYU_PORT must be an integer from 1 to 65535, not 'eighty'"),
        ("OKRYU_PORT", "70000", "OKRYU_PORT must be an integer from 1 to 65535, not '70000'"),
        ("OKRYU_PORT", "-5", "OKRYU_PORT must be an integer from 1 to 65535"),
        ("OKRYU_PORT", "0", "OKRYU_PORT must be an integer from 1 to 65535"),
        ("OKRYU_SMPP_PORT", "65536", "OKRYU_SMPP_PORT must be an integer from 1 to 65535"),
        ("OKRYU_REDIS_CONNECTIONS", "0", "OKRYU_REDIS_CONNECTIONS must be an integer from 1"),
        ("OKRYU_SMS_GIVE_UP", "nan", "OKRYU_SMS_GIVE_UP must be a number of seconds from 60 to"),
        ("OKRYU_SMS_GIVE_UP", "inf", "OKRYU_SMS_GIVE_UP must be a number of seconds"),
        ("OKRYU_SMS_GIVE_UP", "1e400", "OKRYU_SMS_GIVE_UP must be a number of seconds"),
        ("OKRYU_SMS_GIVE_UP", "1e300", "OKRYU_SMS_GIVE_UP must be a number of seconds"),
        ("OKRYU_SMS_GIVE_UP", "-1", "OKRYU_SMS_GIVE_UP must be a number of seconds"),
        ("OKRYU_HOP_DEADLINE", "0.001", "OKRYU_HOP_DEADLINE must be a number of seconds from 0.5"),
        ("OKRYU_HOP_DEADLINE", "-1", "OKRYU_HOP_DEADLINE must be a number of seconds"),
        ("OKRYU_HOP_DEADLINE", "nan", "OKRYU_HOP_DEADLINE must be a number of seconds"),
        ("OKRYU_HOP_DEADLINE", "60", "OKRYU_HOP_DEADLINE must be a number of seconds"),
        ("OKRYU_RETRY_WINDOW", "0", "OKRYU_RETRY_WINDOW must be a number of seconds"),
        ("OKRYU_RETRY_WINDOW", "-inf", "OKRYU_RETRY_WINDOW must be a number of seconds"),
        ("OKRYU_CART_TTL", "0", "OKRYU_CART_TTL must be a whole number of seconds from 60"),
        ("OKRYU_CART_TTL", "-86400", "OKRYU_CART_TTL must be a whole number of seconds"),
        ("OKRYU_CART_TTL", "1" + "0" * 20, "OKRYU_CART_TTL must be a whole number of seconds"),
        ("OKRYU_RESUME_TTL", "0", "OKRYU_RESUME_TTL must be a whole number of seconds"),
        (
            "OKRYU_PIN_LOCK",
            "59",
            "OKRYU_PIN_LOCK must be a whole number of seconds from 60 to 86400",
        ),
        ("OKRYU_PIN_LOCK", "86401", "OKRYU_PIN_LOCK must be a whole number of seconds"),
        ("OKRYU_PIN_LOCK", "15m", "OKRYU_PIN_LOCK must be a whole number of seconds"),
        ("OKRYU_PIN_LOCK", "nan", "OKRYU_PIN_LOCK must be a whole number of seconds"),
        ("OKRYU_REMINDER_DELAY", "-900", "OKRYU_REMINDER_DELAY must be a whole number of seconds"),
        ("OKRYU_SMPP_ENQUIRE_INTERVAL", "0", "OKRYU_SMPP_ENQUIRE_INTERVAL must be a number"),
        ("OKRYU_SMS_POLL_INTERVAL", "0", "OKRYU_SMS_POLL_INTERVAL must be a number"),
        ("OKRYU_SMS_RATE", "-1", "OKRYU_SMS_RATE must be a rate (messages a second) of at least 0"),
        ("OKRYU_SMS_RATE", "inf", "OKRYU_SMS_RATE must be a rate"),
        ("OKRYU_SMS_REPLIES_PER_SENDER", "0", "OKRYU_SMS_REPLIES_PER_SENDER must be an integer"),
        ("OKRYU_SMS_REPLIES_PER_HOUR", "-1", "OKRYU_SMS_REPLIES_PER_HOUR must be an integer"),
        ("OKRYU_MAX_QUANTITY", "0", "OKRYU_MAX_QUANTITY must be an integer from 1 to 99"),
        ("OKRYU_MAX_QUANTITY", "100", "OKRYU_MAX_QUANTITY must be an integer from 1 to 99"),
        ("OKRYU_SCREEN_GSM7", "0", "OKRYU_SCREEN_GSM7 must be an integer from 60 to 182"),
        ("OKRYU_SCREEN_GSM7", "183", "OKRYU_SCREEN_GSM7 must be an integer from 60 to 182"),
        ("OKRYU_SCREEN_UCS2", "29", "OKRYU_SCREEN_UCS2 must be an integer from 30 to 80"),
        ("OKRYU_SCREEN_UCS2", "91", "OKRYU_SCREEN_UCS2 must be an integer from 30 to 80"),
        ("OKRYU_SCREEN_BUDGETS", "africastalking=lots", "slug=GSM7/UCS2"),
        ("OKRYU_SCREEN_BUDGETS", "hubtel=\u00b2/80", "slug=GSM7/UCS2"),  # a digit int() refuses
        ("OKRYU_SCREEN_BUDGETS", "africastalking=5/2", "gives africastalking 5/2: a screen holds"),
        ("OKRYU_SCREEN_BUDGETS", "hubtel=160/80,nalo=182/91", "gives nalo 182/91"),
        ("OKRYU_DEFAULT_REGION", "XX", "OKRYU_DEFAULT_REGION takes ISO 3166 region codes"),
        ("OKRYU_TIMEZONE", "Mars/Olympus", "OKRYU_TIMEZONE takes an IANA time zone"),
        ("OKRYU_TIMEZONE", "../../etc/passwd", "OKRYU_TIMEZONE takes an IANA time zone"),
        ("OKRYU_SMS_REGIONS", "kp, Korea", "OKRYU_SMS_REGIONS takes ISO 3166 region codes"),
        ("OKRYU_DEMO", "2", "OKRYU_DEMO must be 1 or 0 (or true/false, yes/no, on/off), not '2'"),
        ("OKRYU_DEMO", "", "OKRYU_DEMO must be 1 or 0"),
        ("OKRYU_SIMULATOR", "enabled", "OKRYU_SIMULATOR must be 1 or 0"),
        ("OKRYU_SMS_DISPATCH", "nope", "OKRYU_SMS_DISPATCH must be 1 or 0"),
        ("OKRYU_SEED_IF_EMPTY", "y", "OKRYU_SEED_IF_EMPTY must be 1 or 0"),
        ("OKRYU_SMS_PROVIDER", "pigeon", "OKRYU_SMS_PROVIDER must be"),
        ("OKRYU_DEFAULT_LANGUAGE", "fr", "OKRYU_DEFAULT_LANGUAGE must be en or ko"),
        (
            "OKRYU_DATABASE_URL",
            f"{PG}?sslmode=require",
            "asyncpg takes no sslmode: write ssl=require",
        ),
        ("OKRYU_DATABASE_URL", f"{PG}?sslmode=verify-full", "write ssl=verify-full"),
        ("OKRYU_DATABASE_URL", f"{PG}?bogus=1", "asyncpg takes no option 'bogus'; it takes "),
        ("OKRYU_DATABASE_URL", f"{PG}?statement_cache_size=0", "no option 'statement_cache_size'"),
        ("OKRYU_DATABASE_URL", f"{PG}?ssl=true", "ssl must be one of disable, allow, prefer"),
        ("OKRYU_DATABASE_URL", f"mysql://okryu:{PASSWORD}@db/okryu", "the store speaks sqlite"),
        ("OKRYU_DATABASE_URL", f"okryu:{PASSWORD}@db", "not a database URL"),
        ("OKRYU_DATABASE_URL", f"{PG.replace('db.example', 'db:port')}", "not a database URL"),
    ],
)
def test_settings_refuse_bad_values_with_the_variable_named(
    name: str, value: str, says: str
) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({name: value})

    message = str(error.value)
    assert message.startswith(name), message
    assert says in message
    assert "\n" not in message and PASSWORD not in message


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"OKRYU_RESUME_TTL": "7200", "OKRYU_CART_TTL": "3600"},
            "OKRYU_RESUME_TTL (7200) must not exceed OKRYU_CART_TTL (3600)",
        ),
        (
            {"OKRYU_REMINDER_DELAY": "3600", "OKRYU_CART_TTL": "3600"},
            "OKRYU_REMINDER_DELAY (3600) must be shorter than OKRYU_CART_TTL (3600)",
        ),
    ],
)
def test_settings_refuse_a_ttl_longer_than_the_record_it_needs(
    env: dict[str, str], says: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(says)):
        Settings.from_env(env)


def test_settings_take_each_range_s_ends_and_every_spelling_of_a_flag() -> None:
    lowest = Settings.from_env(
        {
            "OKRYU_PORT": "1",
            "OKRYU_SCREEN_GSM7": "60",
            "OKRYU_SCREEN_UCS2": "30",
            "OKRYU_HOP_DEADLINE": "0.5",
            "OKRYU_SMS_RATE": "0",
            "OKRYU_MAX_QUANTITY": "1",
            "OKRYU_CART_TTL": "60",
            "OKRYU_RESUME_TTL": "60",
            "OKRYU_REMINDER_DELAY": "59",
            "OKRYU_DEMO": " Yes ",
            "OKRYU_SIMULATOR": "ON",
            "OKRYU_SMS_DISPATCH": "False",
            "OKRYU_SEED_IF_EMPTY": "off",
            "OKRYU_DEFAULT_REGION": "kr",
        }
    )
    highest = Settings.from_env(
        {
            "OKRYU_PORT": "65535",
            "OKRYU_SCREEN_BUDGETS": "africastalking = 182/80",
            "OKRYU_HOP_DEADLINE": "15",
            "OKRYU_MAX_QUANTITY": "99",
            "OKRYU_DEMO": "TRUE",
            "OKRYU_SMS_DISPATCH": "no",
        }
    )

    assert (lowest.port, lowest.screen_budget, lowest.hop_deadline) == (1, Budget(60, 30), 0.5)
    assert (lowest.sms_rate, lowest.max_quantity, lowest.cart_ttl) == (0.0, 1, 60)
    assert (lowest.demo, lowest.simulator, lowest.sms_dispatch, lowest.seed_if_empty) == (
        True,
        True,
        False,
        False,
    )
    assert lowest.default_region == "KR"
    assert (highest.port, highest.hop_deadline, highest.max_quantity) == (65535, 15.0, 99)
    assert highest.budget_for("africastalking") == Budget(182, 80)
    assert (highest.demo, highest.sms_dispatch) == (True, False)


@pytest.mark.parametrize(
    "query",
    ["?ssl=require", "?ssl=verify-full&command_timeout=5", "?host=/var/run/postgresql"],
)
def test_settings_take_the_options_asyncpg_takes_from_a_url(query: str) -> None:
    assert Settings.from_env({"OKRYU_DATABASE_URL": PG + query}).database_url == PG + query


def test_settings_hop_deadline_leaves_the_store_time_before_the_answer_is_saved() -> None:
    # A hop stops waiting for the store SAVE_MARGIN before its deadline: at the shortest
    # deadline allowed, the store still has as long as the saving does.
    assert HOP_DEADLINES[0] >= 2 * SAVE_MARGIN


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"OKRYU_CALLBACK_OPEN": "bogus"}, "OKRYU_CALLBACK_OPEN names unknown channels bogus;"),
        (
            {"OKRYU_CALLBACK_OPEN": "nalo, Hubtel"},
            "OKRYU_CALLBACK_OPEN names unknown channels Hubtel",
        ),
        (
            {"OKRYU_CALLBACK_SECRETS": "hubtle=s3cret"},
            "OKRYU_CALLBACK_SECRETS names unknown channels hubtle",
        ),
        (
            {"OKRYU_CALLBACK_ALLOW": "nallo=10.0.0.0/8"},
            "OKRYU_CALLBACK_ALLOW names unknown channels nallo",
        ),
        ({"OKRYU_SCREEN_BUDGETS": "at=182/80"}, "OKRYU_SCREEN_BUDGETS names unknown channels at;"),
    ],
)
def test_create_app_refuses_settings_that_name_an_unknown_channel(
    env: dict[str, str], says: str
) -> None:
    settings = Settings.from_env({"OKRYU_DEMO": "1", **env})  # the names are read, not known yet
    with pytest.raises(SettingsError) as error:
        create_app(settings)
    assert str(error.value).startswith(says)
    assert "known: africastalking, hubtel, arkesel, nalo, hollatags" in str(error.value)


def test_create_app_knows_the_channels_of_the_channels_file(tmp_path: Path) -> None:
    path = tmp_path / "channels.toml"
    path.write_text("[atcompat.crossgate]\nmethod = 'GET'\n")
    settings = Settings.from_env(
        {
            "OKRYU_DEMO": "1",
            "OKRYU_CHANNELS_FILE": str(path),
            "OKRYU_CALLBACK_OPEN": "crossgate, *",
            "OKRYU_CALLBACK_SECRETS": "crossgate=s3cret",
            "OKRYU_SCREEN_BUDGETS": "crossgate=182/80",
        }
    )
    app = create_app(settings)
    assert app[keys.SETTINGS].budget_for("crossgate") == Budget(182, 80)
    with pytest.raises(SettingsError, match="OKRYU_CALLBACK_OPEN names unknown channels crossgate"):
        create_app(dataclasses.replace(settings, channels_file=None))


def test_settings_pin_lock_is_fifteen_minutes_unless_told() -> None:
    assert Settings.from_env({}).pin_lock == 900
    assert Settings.from_env({"OKRYU_PIN_LOCK": "60"}).pin_lock == 60
    assert Settings.from_env({"OKRYU_PIN_LOCK": "86400"}).pin_lock == 86400


def test_settings_timezone_is_the_shops_pyongyang_unless_set() -> None:
    assert Settings.from_env({}).timezone == "Asia/Pyongyang"
    assert Settings.from_env({"OKRYU_TIMEZONE": " Asia/Seoul "}).timezone == "Asia/Seoul"
