"""Configuration: every ``OKRYU_*`` environment variable, read once into a frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers

from gateway.auth import CallbackAuth, parse_networks
from gateway.errors import GatewayError
from menus.screens import Budget

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/okryu.db"


class SettingsError(GatewayError, ValueError):
    """An ``OKRYU_*`` variable holds a value the gateway cannot use."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None  # None: start an embedded redis-server
    redis_prefix: str = "okryu:"
    redis_connections: int = 64  # Redis connections per process; hops beyond them wait
    service_codes: tuple[str, ...] = ("*123#",)  # the base codes this gateway answers
    default_region: str = "KP"
    screen_budget: Budget = field(default_factory=Budget)
    channel_budgets: Mapping[str, Budget] = field(default_factory=dict)  # slug -> budget
    callback_auth: Mapping[str, CallbackAuth] = field(default_factory=dict)  # slug -> auth
    # Channels allowed to run without a secret or allowlist outside demo mode ("*": all).
    callback_open: frozenset[str] = frozenset()
    channels: tuple[str, ...] | None = None  # the USSD channels served; None: every one known
    sms_regions: tuple[str, ...] = ()  # regions SMS replies may go to; (): the default region
    sms_replies_per_sender: int = 5  # replies to one number an hour
    sms_replies_per_hour: int = 1000  # replies to everyone an hour
    channels_file: str | None = None  # TOML: Africa's Talking-compatible resellers
    reminder_delay: int = 900  # seconds after a cut session before its cart is reminded of
    default_language: str = "en"
    max_quantity: int = 10
    resume_ttl: int = 600
    hop_deadline: float = 2.0  # seconds: every hop is answered within this
    retry_window: float = 1.0  # seconds: the same answer again this soon is a retry
    cart_ttl: int = 86400
    sms_provider: str = "log"
    sms_sender: str = "OKRYU"
    at_sms_url: str = "https://api.africastalking.com/version1/messaging"
    at_username: str = "sandbox"
    at_api_key: str = field(default="", repr=False)  # never in logs
    smpp_host: str = "127.0.0.1"
    smpp_port: int = 2775
    smpp_system_id: str = ""
    smpp_password: str = field(default="", repr=False)  # never in logs
    smpp_system_type: str = ""
    smpp_enquire_interval: float = 30.0  # seconds between enquire_link keep-alives
    admin_token: str = field(default="", repr=False)  # never in logs; empty: no admin API
    sms_dispatch: bool = True  # run the outbox dispatcher inside this process
    sms_poll_interval: float = 1.0
    sms_rate: float = 0.0  # messages a second through the provider; 0: as fast as it takes
    # Seconds after it was queued that an SMS not yet sent is marked failed. Six hours ride
    # out an operator's maintenance window or a long outage, and a confirmation or status
    # SMS older than that would arrive after newer news (or the delivery) it announces.
    sms_give_up: float = 6 * 3600.0
    demo: bool = False
    simulator: bool = False  # serve the web handset at /simulator/
    log_format: str = "json"  # json (one object per line) or text
    seed_if_empty: bool = False
    var_dir: Path = Path("var")

    @property
    def service_code(self) -> str:
        """The code a handset dials by default: the first configured."""
        return self.service_codes[0]

    def auth_for(self, channel: str) -> CallbackAuth:
        """How callbacks on ``channel`` are authenticated (by default: not at all)."""
        return self.callback_auth.get(channel, _OPEN)

    def may_run_open(self, channel: str) -> bool:
        """Whether ``channel`` may take unauthenticated callbacks (told with a warning)."""
        return self.demo or "*" in self.callback_open or channel in self.callback_open

    @property
    def reply_regions(self) -> tuple[str, ...]:
        """The regions (ISO 3166 codes) whose numbers the shop serves and SMS replies reach."""
        return self.sms_regions or (self.default_region,)

    def budget_for(self, channel: str) -> Budget:
        """The screen budget of ``channel``: its own if configured, else the default."""
        return self.channel_budgets.get(channel, self.screen_budget)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (default: ``os.environ``)."""
        env = os.environ if env is None else env

        def get(name: str, default: str) -> str:
            return env.get(f"OKRYU_{name}", default)

        def integer(name: str, default: int) -> int:
            raw = get(name, str(default))
            try:
                return int(raw)
            except ValueError:
                raise SettingsError(f"OKRYU_{name} must be an integer, not {raw!r}") from None

        def number(name: str, default: float) -> float:
            raw = get(name, str(default))
            try:
                return float(raw)
            except ValueError:
                raise SettingsError(f"OKRYU_{name} must be a number, not {raw!r}") from None

        def flag(name: str, default: bool) -> bool:
            return get(name, "1" if default else "0").lower() in {"1", "true", "yes", "on"}

        provider = get("SMS_PROVIDER", "log")
        if provider not in {"log", "africastalking", "smpp"}:
            raise SettingsError(
                f"OKRYU_SMS_PROVIDER must be log, africastalking or smpp, not {provider!r}"
            )
        return cls(
            host=get("HOST", cls.host),
            port=integer("PORT", cls.port),
            database_url=get("DATABASE_URL", DEFAULT_DATABASE_URL),
            redis_url=env.get("OKRYU_REDIS_URL") or None,
            redis_prefix=get("REDIS_PREFIX", cls.redis_prefix),
            redis_connections=integer("REDIS_CONNECTIONS", cls.redis_connections),
            service_codes=_codes(get("SERVICE_CODES", get("SERVICE_CODE", "*123#"))),
            default_region=get("DEFAULT_REGION", cls.default_region),
            screen_budget=Budget(integer("SCREEN_GSM7", 160), integer("SCREEN_UCS2", 80)),
            channel_budgets=_budgets(get("SCREEN_BUDGETS", "")),
            callback_auth=_auth(get("CALLBACK_SECRETS", ""), get("CALLBACK_ALLOW", "")),
            callback_open=frozenset(_names(get("CALLBACK_OPEN", ""))),
            channels=tuple(_names(get("CHANNELS", ""))) or None,
            sms_regions=_regions(get("SMS_REGIONS", "")),
            sms_replies_per_sender=integer("SMS_REPLIES_PER_SENDER", cls.sms_replies_per_sender),
            sms_replies_per_hour=integer("SMS_REPLIES_PER_HOUR", cls.sms_replies_per_hour),
            channels_file=env.get("OKRYU_CHANNELS_FILE") or None,
            reminder_delay=integer("REMINDER_DELAY", cls.reminder_delay),
            default_language=_language(get("DEFAULT_LANGUAGE", "en")),
            max_quantity=integer("MAX_QUANTITY", cls.max_quantity),
            hop_deadline=number("HOP_DEADLINE", cls.hop_deadline),
            retry_window=number("RETRY_WINDOW", cls.retry_window),
            resume_ttl=integer("RESUME_TTL", cls.resume_ttl),
            cart_ttl=integer("CART_TTL", cls.cart_ttl),
            sms_provider=provider,
            sms_sender=get("SMS_SENDER", cls.sms_sender),
            at_sms_url=get("AT_SMS_URL", cls.at_sms_url),
            at_username=get("AT_USERNAME", cls.at_username),
            at_api_key=get("AT_API_KEY", cls.at_api_key),
            smpp_host=get("SMPP_HOST", cls.smpp_host),
            smpp_port=integer("SMPP_PORT", cls.smpp_port),
            smpp_system_id=get("SMPP_SYSTEM_ID", cls.smpp_system_id),
            smpp_password=get("SMPP_PASSWORD", cls.smpp_password),
            smpp_system_type=get("SMPP_SYSTEM_TYPE", cls.smpp_system_type),
            smpp_enquire_interval=number("SMPP_ENQUIRE_INTERVAL", cls.smpp_enquire_interval),
            admin_token=get("ADMIN_TOKEN", "").strip(),
            sms_dispatch=flag("SMS_DISPATCH", True),
            sms_rate=number("SMS_RATE", cls.sms_rate),
            sms_poll_interval=number("SMS_POLL_INTERVAL", cls.sms_poll_interval),
            sms_give_up=number("SMS_GIVE_UP", cls.sms_give_up),
            demo=flag("DEMO", False),
            simulator=flag("SIMULATOR", False),
            log_format=_log_format(get("LOG_FORMAT", "json")),
            seed_if_empty=flag("SEED_IF_EMPTY", False),
            var_dir=Path(get("VAR_DIR", "var")),
        )


def _language(value: str) -> str:
    if value not in {"en", "ko"}:
        raise SettingsError(f"OKRYU_DEFAULT_LANGUAGE must be en or ko, not {value!r}")
    return value


def _budgets(value: str) -> dict[str, Budget]:
    """``"africastalking=182/80,hubtel=160/70"`` -> per-channel budgets."""
    budgets: dict[str, Budget] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        slug, _, sizes = item.partition("=")
        gsm7, _, ucs2 = sizes.partition("/")
        if not (slug and gsm7.isdigit() and ucs2.isdigit()):
            raise SettingsError(
                f"OKRYU_SCREEN_BUDGETS entries look like slug=GSM7/UCS2 (africastalking=182/80),"
                f" not {item!r}"
            )
        budgets[slug.strip()] = Budget(int(gsm7), int(ucs2))
    return budgets


def _names(value: str) -> list[str]:
    """``"hubtel, nalo"`` -> ``["hubtel", "nalo"]``."""
    return [name.strip() for name in value.split(",") if name.strip()]


def _regions(value: str) -> tuple[str, ...]:
    regions = tuple(region.upper() for region in _names(value))
    unknown = [region for region in regions if region not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise SettingsError(
            f"OKRYU_SMS_REGIONS takes ISO 3166 region codes such as KP, not {', '.join(unknown)}"
        )
    return regions


def _codes(value: str) -> tuple[str, ...]:
    codes = tuple(code.strip() for code in value.split(",") if code.strip())
    if not codes:
        raise SettingsError("OKRYU_SERVICE_CODES must name at least one code, like *123#")
    return codes


_OPEN = CallbackAuth()


def _pairs(value: str, separator: str, variable: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(separator))):
        slug, sign, rest = item.partition("=")
        if not sign or not slug.strip() or not rest.strip():
            # Never the entry itself: it may hold a secret.
            raise SettingsError(
                f"{variable} entries look like slug=value; one has no {'value' if sign else '='}"
            )
        pairs[slug.strip()] = rest.strip()
    return pairs


def _auth(secrets: str, allow: str) -> dict[str, CallbackAuth]:
    """``OKRYU_CALLBACK_SECRETS="hubtel=s3cret,africastalking=t0ken"`` and
    ``OKRYU_CALLBACK_ALLOW="hubtel=10.0.0.0/8 192.0.2.7;nalo=198.51.100.0/24"``."""
    by_secret = _pairs(secrets, ",", "OKRYU_CALLBACK_SECRETS")
    by_allow = _pairs(allow, ";", "OKRYU_CALLBACK_ALLOW")
    auth: dict[str, CallbackAuth] = {}
    for slug in by_secret.keys() | by_allow.keys():
        try:
            networks = parse_networks(by_allow.get(slug, ""))
        except ValueError as error:
            raise SettingsError(f"OKRYU_CALLBACK_ALLOW for {slug}: {error}") from None
        auth[slug] = CallbackAuth(by_secret.get(slug), networks)
    return auth


def _log_format(value: str) -> str:
    if value not in {"json", "text"}:
        raise SettingsError(f"OKRYU_LOG_FORMAT must be json or text, not {value!r}")
    return value
