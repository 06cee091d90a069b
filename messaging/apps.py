from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"

    def ready(self) -> None:
        from messaging import (
            metrics,  # noqa: F401  (registers its /metrics collector)
            tasks,  # noqa: F401  (registers the beat entries)
        )
