from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "automation"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from automation import tasks  # noqa: F401  (registers its beat entry)
        from automation.models import Rule
        from automation.suppressed import on_reply_suppressed
        from webhooks.signals import reply_suppressed

        # A chat webhook's held-back reply joins the rules' hits in the automation log.
        reply_suppressed.connect(on_reply_suppressed, dispatch_uid="automation.suppressed")

        # Edits made outside the services (Django admin, shell) invalidate the caches too.
        post_save.connect(_invalidate, sender=Rule, dispatch_uid="automation.rule_saved")
        post_delete.connect(_invalidate, sender=Rule, dispatch_uid="automation.rule_deleted")


def _invalidate(sender: object, **kwargs: object) -> None:
    from automation.rules import rules_changed

    rules_changed()
