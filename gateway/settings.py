"""Configuration: every ``OKRYU_*`` environment variable, read once into a frozen object."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from gateway.auth import CallbackAuth, parse_networks
from gateway.errors import GatewayError
from menus.screens import Budget
from store.db import url_problem

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/okryu.db"

# The ranges numbers must fall in, (lowest, highest or None), both ends included.
PORTS = (1, 65535)
WORKERS = (1, 256)
CATALOG_POLL = (0.1, 3600.0)  # seconds; how stale a catalog may be when a message is lost
CONNECTIONS = (1, 10_000)  # Redis's own default limit of clients (maxclients)
MONTH = 30 * 24 * 3600  # seconds: no record, reminder or unsent SMS waits longer than this
# One USSD screen: the network carries at most 160 octets, 182 GSM-7 septets or 80 UCS-2
# units (3GPP TS 29.002); below 60 or 30 a screen holds hardly more than its navigation line.
# `okryu flow check` tells whether the journey's screens fit the budget chosen.
GSM7_UNITS = (60, 182)
UCS2_UNITS = (30, 80)
QUANTITIES = (1, 99)  # screens are laid out for quantities of two digits
REPLY_LIMITS = (1, None)  # SMS replies an hour: 0 would answer no SMS command at all
# Seconds. A hop keeps gateway.hop.SAVE_MARGIN of its deadline for saving, so a shorter
# deadline leaves the store no time; aggregators wait 10-15 s for an answer, and retry within
# that, so a longer deadline or retry window answers no one.
HOP_DEADLINES = (0.5, 15.0)
RETRY_WINDOWS = (0.1, 15.0)
CART_TTLS = (60, MONTH)  # a record must outlive the wait for one answer (networks allow 60 s)
ENQUIRE_INTERVALS = (1.0, 3600.0)
# USSD over SMPP (OKRYU_USSD_SMPP_*): how the USSD centre carries a dialogue's messages, and
# which optional parameter names the dialogue (PROTOCOLS.md §6.5).
USSD_SMPP_PROFILES = ("deliver_sm", "data_sm")
USSD_SMPP_DIALOGUES = ("user_message_reference", "its_session_info")
POLL_INTERVALS = (0.01, 60.0)
# Seconds a shop card stays locked after three wrong PINs: at least a minute (a lock a
# guesser does not notice is none), at most a day (the customer is told, by SMS, for how long).
PIN_LOCKS = (60, 86400)
SECONDS = "a whole number of seconds"


class SettingsError(GatewayError, ValueError):
    """An ``OKRYU_*`` variable holds a value the gateway cannot use."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1  # processes serving the port (okryu serve --workers): one per core
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None  # None: start an embedded redis-server
    redis_prefix: str = "okryu:"
    redis_connections: int = 64  # Redis connections per process; hops beyond them wait
    catalog_poll: float = 1.0  # seconds between re-reads of the catalog versions (lost messages)
    service_codes: tuple[str, ...] = ("*123#",)  # the base codes this gateway answers
    default_region: str = "KP"
    timezone: str = "Asia/Pyongyang"  # the shop's: times on /admin/ are shown in it
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
    pin_lock: int = 900  # seconds a shop card is locked after three wrong PINs
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
    # --- USSD (and SMS) over the operator's own SMPP bind (channel "smpp") ---
    ussd_smpp_host: str = ""  # empty: no SMPP USSD channel
    ussd_smpp_port: int = 2775
    ussd_smpp_system_id: str = ""
    ussd_smpp_password: str = field(default="", repr=False)  # never in logs
    ussd_smpp_system_type: str = ""
    ussd_smpp_profile: str = "deliver_sm"  # deliver_sm (with submit_sm) or data_sm both ways
    ussd_smpp_dialogue: str = "user_message_reference"  # or its_session_info
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
    access_log: bool = False  # a line per HTTP request (hops are counted in /metrics anyway)
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
    def ussd_smpp(self) -> bool:
        """Whether the gateway takes USSD dialogues over SMPP (``OKRYU_USSD_SMPP_HOST`` set)."""
        return bool(self.ussd_smpp_host)

    @property
    def sms_over_ussd_bind(self) -> bool:
        """Whether the ``smpp`` SMS provider sends over the USSD channel's bind: when
        ``OKRYU_SMPP_SYSTEM_ID`` is unset, or names the same host, port and system_id."""
        if not (self.ussd_smpp and self.sms_provider == "smpp"):
            return False
        ussd = (self.ussd_smpp_host, self.ussd_smpp_port, self.ussd_smpp_system_id)
        return not self.smpp_system_id or (
            (self.smpp_host, self.smpp_port, self.smpp_system_id) == ussd
        )

    @property
    def reply_regions(self) -> tuple[str, ...]:
        """The regions (ISO 3166 codes) whose numbers the shop serves and SMS replies reach."""
        return self.sms_regions or (self.default_region,)

    def budget_for(self, channel: str) -> Budget:
        """The screen budget of ``channel``: its own if configured, else the default."""
        return self.channel_budgets.get(channel, self.screen_budget)

    def check_channels(self, known: Iterable[str]) -> None:
        """Refuse a variable that names a channel not in ``known`` (the built-in ones and those
        of ``OKRYU_CHANNELS_FILE``, so only checkable once that file is read)."""
        slugs = list(known)
        auth = self.callback_auth
        named = {
            "OKRYU_CALLBACK_OPEN": self.callback_open - {"*"},
            "OKRYU_CALLBACK_SECRETS": {slug for slug in auth if auth[slug].secret is not None},
            "OKRYU_CALLBACK_ALLOW": {slug for slug in auth if auth[slug].allow},
            "OKRYU_SCREEN_BUDGETS": set(self.channel_budgets),
        }
        for variable, names in named.items():
            unknown = sorted(names - set(slugs))
            if unknown:
                star = " or *" if variable == "OKRYU_CALLBACK_OPEN" else ""
                raise SettingsError(
                    f"{variable} names unknown channels {', '.join(unknown)};"
                    f" known: {', '.join(slugs)}{star}"
                )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (default: ``os.environ``).

        A value the gateway cannot use is a :class:`SettingsError` naming its variable: every
        number is finite and within its range, every flag a word that says yes or no.
        """
        env = os.environ if env is None else env

        def get(name: str, default: str) -> str:
            return env.get(f"OKRYU_{name}", default)

        def integer(
            name: str, default: int, span: tuple[int, int | None], kind: str = "an integer"
        ) -> int:
            raw = get(name, str(default))
            try:
                value = int(raw)
            except ValueError:
                value = None
            if value is None or not _within(value, span):
                raise SettingsError(f"OKRYU_{name} must be {kind} {_span(span)}, not {raw!r}")
            return value

        def number(
            name: str,
            default: float,
            span: tuple[float, float | None],
            kind: str = "a number of seconds",
        ) -> float:
            raw = get(name, str(default))
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            # float() takes nan, inf and 1e400 (inf): none is a duration or a rate.
            if not math.isfinite(value) or not _within(value, span):
                raise SettingsError(f"OKRYU_{name} must be {kind} {_span(span)}, not {raw!r}")
            return value

        def flag(name: str, default: bool) -> bool:
            raw = get(name, "1" if default else "0")
            word = raw.strip().lower()
            if word not in _YES | _NO:
                raise SettingsError(
                    f"OKRYU_{name} must be 1 or 0 (or true/false, yes/no, on/off), not {raw!r}"
                )
            return word in _YES

        def choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
            raw = get(name, default)
            if raw not in allowed:
                raise SettingsError(f"OKRYU_{name} must be {' or '.join(allowed)}, not {raw!r}")
            return raw

        provider = get("SMS_PROVIDER", "log")
        if provider not in {"log", "africastalking", "smpp"}:
            raise SettingsError(
                f"OKRYU_SMS_PROVIDER must be log, africastalking or smpp, not {provider!r}"
            )
        database_url = get("DATABASE_URL", DEFAULT_DATABASE_URL)
        problem = url_problem(database_url)
        if problem is not None:  # never the URL itself: it may hold a password
            raise SettingsError(f"OKRYU_DATABASE_URL: {problem}")
        settings = cls(
            host=get("HOST", cls.host),
            port=integer("PORT", cls.port, PORTS),
            workers=integer("WORKERS", cls.workers, WORKERS),
            database_url=database_url,
            redis_url=env.get("OKRYU_REDIS_URL") or None,
            redis_prefix=get("REDIS_PREFIX", cls.redis_prefix),
            redis_connections=integer("REDIS_CONNECTIONS", cls.redis_connections, CONNECTIONS),
            catalog_poll=number("CATALOG_POLL", cls.catalog_poll, CATALOG_POLL),
            service_codes=_codes(get("SERVICE_CODES", get("SERVICE_CODE", "*123#"))),
            default_region=_region("OKRYU_DEFAULT_REGION", get("DEFAULT_REGION", "KP")),
            timezone=_timezone(get("TIMEZONE", cls.timezone)),
            screen_budget=Budget(
                integer("SCREEN_GSM7", 160, GSM7_UNITS), integer("SCREEN_UCS2", 80, UCS2_UNITS)
            ),
            channel_budgets=_budgets(get("SCREEN_BUDGETS", "")),
            callback_auth=_auth(get("CALLBACK_SECRETS", ""), get("CALLBACK_ALLOW", "")),
            callback_open=frozenset(_names(get("CALLBACK_OPEN", ""))),
            channels=tuple(_names(get("CHANNELS", ""))) or None,
            sms_regions=_regions(get("SMS_REGIONS", "")),
            sms_replies_per_sender=integer(
                "SMS_REPLIES_PER_SENDER", cls.sms_replies_per_sender, REPLY_LIMITS
            ),
            sms_replies_per_hour=integer(
                "SMS_REPLIES_PER_HOUR", cls.sms_replies_per_hour, REPLY_LIMITS
            ),
            channels_file=env.get("OKRYU_CHANNELS_FILE") or None,
            reminder_delay=integer("REMINDER_DELAY", cls.reminder_delay, (1, MONTH), SECONDS),
            default_language=_language(get("DEFAULT_LANGUAGE", "en")),
            max_quantity=integer("MAX_QUANTITY", cls.max_quantity, QUANTITIES),
            hop_deadline=number("HOP_DEADLINE", cls.hop_deadline, HOP_DEADLINES),
            retry_window=number("RETRY_WINDOW", cls.retry_window, RETRY_WINDOWS),
            resume_ttl=integer("RESUME_TTL", cls.resume_ttl, (1, MONTH), SECONDS),
            cart_ttl=integer("CART_TTL", cls.cart_ttl, CART_TTLS, SECONDS),
            pin_lock=integer("PIN_LOCK", cls.pin_lock, PIN_LOCKS, SECONDS),
            sms_provider=provider,
            sms_sender=get("SMS_SENDER", cls.sms_sender),
            at_sms_url=get("AT_SMS_URL", cls.at_sms_url),
            at_username=get("AT_USERNAME", cls.at_username),
            at_api_key=get("AT_API_KEY", cls.at_api_key),
            smpp_host=get("SMPP_HOST", cls.smpp_host),
            smpp_port=integer("SMPP_PORT", cls.smpp_port, PORTS),
            smpp_system_id=get("SMPP_SYSTEM_ID", cls.smpp_system_id),
            smpp_password=get("SMPP_PASSWORD", cls.smpp_password),
            smpp_system_type=get("SMPP_SYSTEM_TYPE", cls.smpp_system_type),
            smpp_enquire_interval=number(
                "SMPP_ENQUIRE_INTERVAL", cls.smpp_enquire_interval, ENQUIRE_INTERVALS
            ),
            ussd_smpp_host=get("USSD_SMPP_HOST", cls.ussd_smpp_host).strip(),
            ussd_smpp_port=integer("USSD_SMPP_PORT", cls.ussd_smpp_port, PORTS),
            ussd_smpp_system_id=get("USSD_SMPP_SYSTEM_ID", cls.ussd_smpp_system_id),
            ussd_smpp_password=get("USSD_SMPP_PASSWORD", cls.ussd_smpp_password),
            ussd_smpp_system_type=get("USSD_SMPP_SYSTEM_TYPE", cls.ussd_smpp_system_type),
            ussd_smpp_profile=choice(
                "USSD_SMPP_PROFILE", cls.ussd_smpp_profile, USSD_SMPP_PROFILES
            ),
            ussd_smpp_dialogue=choice(
                "USSD_SMPP_DIALOGUE", cls.ussd_smpp_dialogue, USSD_SMPP_DIALOGUES
            ),
            admin_token=get("ADMIN_TOKEN", "").strip(),
            sms_dispatch=flag("SMS_DISPATCH", True),
            sms_rate=number("SMS_RATE", cls.sms_rate, (0.0, None), "a rate (messages a second)"),
            sms_poll_interval=number("SMS_POLL_INTERVAL", cls.sms_poll_interval, POLL_INTERVALS),
            sms_give_up=number("SMS_GIVE_UP", cls.sms_give_up, (60.0, MONTH)),
            demo=flag("DEMO", False),
            simulator=flag("SIMULATOR", False),
            access_log=flag("ACCESS_LOG", False),
            log_format=_log_format(get("LOG_FORMAT", "json")),
            seed_if_empty=flag("SEED_IF_EMPTY", False),
            var_dir=Path(get("VAR_DIR", "var")),
        )
        if settings.ussd_smpp and not settings.ussd_smpp_system_id:
            raise SettingsError(
                "OKRYU_USSD_SMPP_SYSTEM_ID is required with OKRYU_USSD_SMPP_HOST: the USSD"
                " centre binds no one without it"
            )
        # Redis keeps a subscriber's record (the resume point and the cart) for OKRYU_CART_TTL.
        if settings.resume_ttl > settings.cart_ttl:
            raise SettingsError(
                f"OKRYU_RESUME_TTL ({settings.resume_ttl}) must not exceed OKRYU_CART_TTL"
                f" ({settings.cart_ttl}): the session it resumes is gone by then"
            )
        if settings.reminder_delay >= settings.cart_ttl:
            raise SettingsError(
                f"OKRYU_REMINDER_DELAY ({settings.reminder_delay}) must be shorter than"
                f" OKRYU_CART_TTL ({settings.cart_ttl}): the cart it reminds of is gone by then"
            )
        return settings


_YES = frozenset({"1", "true", "yes", "on"})
_NO = frozenset({"0", "false", "no", "off"})


def _within(value: float, span: tuple[float, float | None]) -> bool:
    low, high = span
    return low <= value and (high is None or value <= high)


def _span(span: tuple[float, float | None]) -> str:
    low, high = span
    return f"of at least {_plain(low)}" if high is None else f"from {_plain(low)} to {_plain(high)}"


def _plain(value: float) -> str:
    """``2592000.0`` -> ``2592000`` (not ``2.592e+06``); ``0.5`` -> ``0.5``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _language(value: str) -> str:
    if value not in {"en", "ko"}:
        raise SettingsError(f"OKRYU_DEFAULT_LANGUAGE must be en or ko, not {value!r}")
    return value


def _budgets(value: str) -> dict[str, Budget]:
    """``"africastalking=182/80,hubtel=160/70"`` -> per-channel budgets."""
    budgets: dict[str, Budget] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        entry = re.fullmatch(r"([^=\s]+)\s*=\s*([0-9]+)\s*/\s*([0-9]+)", item, re.ASCII)
        if entry is None:
            raise SettingsError(
                f"OKRYU_SCREEN_BUDGETS entries look like slug=GSM7/UCS2 (africastalking=182/80),"
                f" not {item!r}"
            )
        slug, gsm7, ucs2 = entry[1], int(entry[2]), int(entry[3])
        if not (_within(gsm7, GSM7_UNITS) and _within(ucs2, UCS2_UNITS)):
            raise SettingsError(
                f"OKRYU_SCREEN_BUDGETS gives {slug} {gsm7}/{ucs2}: a screen holds"
                f" {_span(GSM7_UNITS)} GSM-7 and {_span(UCS2_UNITS)} UCS-2 units"
            )
        budgets[slug] = Budget(gsm7, ucs2)
    return budgets


def _names(value: str) -> list[str]:
    """``"hubtel, nalo"`` -> ``["hubtel", "nalo"]``."""
    return [name.strip() for name in value.split(",") if name.strip()]


def _regions(value: str) -> tuple[str, ...]:
    return tuple(_region("OKRYU_SMS_REGIONS", region) for region in _names(value))


def _region(variable: str, value: str) -> str:
    """``value`` as the region code phonenumbers reads numbers by (``kp`` -> ``KP``)."""
    region = value.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise SettingsError(f"{variable} takes ISO 3166 region codes such as KP, not {value!r}")
    return region


def _timezone(value: str) -> str:
    """An IANA time zone name (``Asia/Pyongyang``), as the tz database spells it."""
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"OKRYU_TIMEZONE takes an IANA time zone such as Asia/Pyongyang, not {value[:60]!r}"
        ) from None
    return name


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
