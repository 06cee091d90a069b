"""Cloud providers, one module each behind `Provider` (see base.py), found by name here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the package is imported while Django loads apps, before any model
    from providers.base import Provider


def _registry() -> dict[str, Provider]:
    from providers.africastalking import AfricasTalking
    from providers.agiletelecom import AgileTelecom
    from providers.twilio import Twilio
    from providers.vonage import Vonage

    return {p.name: p for p in (Twilio(), Vonage(), AfricasTalking(), AgileTelecom())}


_PROVIDERS: dict[str, Provider] = {}


def get_provider(name: str) -> Provider:
    """The module for a provider name (`ProviderApp.provider`); KeyError for an unknown one."""
    if not _PROVIDERS:
        _PROVIDERS.update(_registry())
    return _PROVIDERS[name]
