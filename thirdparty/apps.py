from django.apps import AppConfig


class ThirdPartyConfig(AppConfig):
    """The SMS Gateway for Android app's third-party API (docs/thirdparty.md)."""

    name = "thirdparty"
    default_auto_field = "django.db.models.BigAutoField"
