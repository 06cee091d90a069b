from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        # Inbound messages reach webhooks explicitly (pipeline.inbound). Status changes, moves
        # to another line and device health come from many services in lower apps, which must
        # not know webhooks: these signals are the plug-in points (messaging/signals.py,
        # devices/signals.py).
        from devices.signals import device_health_changed
        from messaging.signals import message_rerouted, message_status_changed

        # tasks and retention register their beat entries, metrics its /metrics collector.
        from webhooks import metrics, receivers, retention, tasks  # noqa: F401

        message_status_changed.connect(
            receivers.on_message_status_changed, dispatch_uid="webhooks.status"
        )
        message_rerouted.connect(receivers.on_message_rerouted, dispatch_uid="webhooks.rerouted")
        device_health_changed.connect(
            receivers.on_device_health_changed, dispatch_uid="webhooks.device_health"
        )
