from django.apps import AppConfig


class SmsgateConfig(AppConfig):
    name = "smsgate"
    verbose_name = "smsgate core"
