from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "automation"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from automation import engine, tasks  # noqa: F401  (tasks registers its beat entry)
        from automation.models import Rule
        from messaging.signals import message_received

        # Runs inside the inbound transaction, before webhooks (INSTALLED_APPS order) records
        # the events, so a forward or an opt-out is part of the same commit.
        message_received.connect(engine.on_message_received, dispatch_uid="automation.engine")
        # Edits made outside the services (Django admin, shell) invalidate the caches too.
        post_save.connect(_invalidate, sender=Rule, dispatch_uid="automation.rule_saved")
        post_delete.connect(_invalidate, sender=Rule, dispatch_uid="automation.rule_deleted")


def _invalidate(sender: object, **kwargs: object) -> None:
    from automation.rules import rules_changed

    rules_changed()
