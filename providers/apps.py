from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    """The cloud numbers: Twilio, Vonage, Africa's Talking and Agile Telecom doors, the apps API
    and the tasks that send through them (docs/providers/README.md)."""

    name = "providers"

    def ready(self) -> None:
        from providers import tasks  # noqa: F401  (signal receivers, beat entries)
