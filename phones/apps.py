from django.apps import AppConfig


class PhonesConfig(AppConfig):
    """The phone doors: SMSSync, MSync and the SMS Gateway for Android app, the hand-out of
    queued messages to phones, and the device API (docs/phones/README.md)."""

    name = "phones"

    def ready(self) -> None:
        from phones import tasks  # noqa: F401  (registers the beat entries)
