# The version of the webhook endpoints that every process checks before using its copy
# (webhooks/versions.py), replaced by triggers in the statement that changes an endpoint.

from typing import Any

from django.db import migrations, models

from webhooks.migrations._version_triggers import Watched, install, uninstall, uninstall_function

ENDPOINTS = Watched(
    table="webhooks_endpoint",
    name="webhooks.endpoints",
    # What webhooks/outbox.py keeps of an endpoint; `failing_since`, written on every failed
    # attempt, is not one of them.
    columns=("id", "enabled", "internal", "events", "filters", "max_attempts", "format"),
    # Automation's ad-hoc forward endpoints are never subscribers.
    counted="NOT {row}.internal",
)


def forwards(apps: Any, schema_editor: Any) -> None:
    install(ENDPOINTS, schema_editor)


def backwards(apps: Any, schema_editor: Any) -> None:
    uninstall(ENDPOINTS, schema_editor)
    uninstall_function(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0004_event_unique_per_message_except_rerouted"),
    ]

    operations = [
        migrations.CreateModel(
            name="ConfigVersion",
            fields=[
                ("name", models.CharField(max_length=40, primary_key=True, serialize=False)),
                ("token", models.CharField(max_length=64)),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
