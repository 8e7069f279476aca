"""The SMS provider that ``OKRYU_SMS_PROVIDER`` names: ``log``, ``africastalking`` or ``smpp``."""

from __future__ import annotations

import aiohttp

from gateway.settings import Settings, SettingsError
from gateway.smpp.provider import SmppProvider
from gateway.sms.africastalking import AfricasTalkingProvider
from gateway.sms.log import LogProvider
from gateway.sms.provider import SmsProvider


def make_provider(settings: Settings, session: aiohttp.ClientSession | None) -> SmsProvider:
    """Build the provider that ``settings.sms_provider`` names."""
    if settings.sms_provider == "log":
        return LogProvider()
    if settings.sms_provider == "africastalking":
        if not settings.at_api_key:
            raise SettingsError(
                "OKRYU_AT_API_KEY is required with OKRYU_SMS_PROVIDER=africastalking"
            )
        if session is None:
            raise ValueError("the africastalking provider needs an aiohttp ClientSession")
        return AfricasTalkingProvider(
            session,
            settings.at_sms_url,
            settings.at_username,
            settings.at_api_key,
            settings.sms_sender or None,
        )
    if settings.sms_provider == "smpp":
        if settings.sms_over_ussd_bind:
            # One bind carries USSD and SMS: the app starts it, the USSD channel answers on it.
            return SmppProvider.from_ussd_settings(settings)
        if not settings.smpp_system_id:
            raise SettingsError("OKRYU_SMPP_SYSTEM_ID is required with OKRYU_SMS_PROVIDER=smpp")
        # Not bound yet: the app starts it (start()/close()) and wires on_receipt.
        return SmppProvider.from_settings(settings)
    raise SettingsError(f"unknown SMS provider {settings.sms_provider!r}")
