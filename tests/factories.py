"""Factories for the whole suite, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import factory
from django.utils import timezone

from devices.models import Device, Sim
from messaging.models import Conversation, Direction, Message, OptOut, ProviderApp, Status
from providers import get_provider
from smsgate.crypto import decrypt_json, hash_secret


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Device

    name = factory.Sequence(lambda n: f"Phone {n}")
    enabled = True
    online = True
    last_seen_at = factory.LazyFunction(timezone.now)
    token_hash = factory.Sequence(lambda n: hash_secret(f"device-token-{n}"))
    smssync_secret_hash = factory.Sequence(lambda n: hash_secret(f"smssync-secret-{n}"))


class SimFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sim

    device = factory.SubFactory(DeviceFactory)
    slot = 1
    number = factory.Sequence(lambda n: f"+1555200{n:04d}")


@dataclass
class PairedDevice:
    """A device with known plaintext credentials, as a phone would hold them."""

    device: Device
    token: str
    secret: str


def paired_device(*, sims: int = 1, **fields: Any) -> PairedDevice:
    n = Device.objects.count() + 1
    token, secret = (
        f"device-token-{n}-{os.urandom(8).hex()}",
        f"smssync-secret-{n}-{os.urandom(4).hex()}",
    )
    device = DeviceFactory(
        token_hash=hash_secret(token), smssync_secret_hash=hash_secret(secret), **fields
    )
    for slot in range(1, sims + 1):
        SimFactory(device=device, slot=slot)
    return PairedDevice(device=device, token=token, secret=secret)


class ProviderAppFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProviderApp

    provider = ProviderApp.Provider.TWILIO
    name = factory.Sequence(lambda n: f"App {n}")
    numbers = factory.LazyFunction(lambda: ["+15557770001"])
    credentials_encrypted = ""
    # As providers.services keeps it: whether the provider can send with these credentials.
    can_send = factory.LazyAttribute(
        lambda app: get_provider(app.provider).can_send(
            decrypt_json(app.credentials_encrypted) if app.credentials_encrypted else {}
        )
    )


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    phone = factory.Sequence(lambda n: f"+1555300{n:04d}")


class OutboundMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    direction = Direction.OUTBOUND
    status = Status.QUEUED
    to_number = factory.Sequence(lambda n: f"+1555400{n:04d}")
    body = "Hello"


class InboundMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    direction = Direction.INBOUND
    status = Status.RECEIVED
    from_number = factory.Sequence(lambda n: f"+1555500{n:04d}")
    body = "Hi there"
    received_at = factory.LazyFunction(timezone.now)


class OptOutFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OptOut

    phone = factory.Sequence(lambda n: f"+1555600{n:04d}")


def config_versions_as_migrated() -> None:
    """The version rows `migrate` writes (webhooks/versions.py). A flushed test database
    (`transaction=True`) has none until a rule or endpoint changes, and without them every
    inbound batch reads the rules and endpoints again."""
    from webhooks.models import ConfigVersion
    from webhooks.versions import ENDPOINTS, RULES

    ConfigVersion.objects.bulk_create(
        [ConfigVersion(name=name, token=os.urandom(16).hex()) for name in (ENDPOINTS, RULES)],
        ignore_conflicts=True,
    )
