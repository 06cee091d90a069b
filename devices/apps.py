from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"

    def ready(self) -> None:
        from devices import tasks  # noqa: F401  (registers the beat entries)
