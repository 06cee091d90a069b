from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "automation"

    def ready(self) -> None:
        from automation import tasks  # noqa: F401  (registers its beat entry)
        from automation.suppressed import on_reply_suppressed
        from webhooks.signals import reply_suppressed

        # A chat webhook's held-back reply joins the rules' hits in the automation log.
        reply_suppressed.connect(on_reply_suppressed, dispatch_uid="automation.suppressed")
