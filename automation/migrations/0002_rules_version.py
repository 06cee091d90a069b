# The version of the rules that every process checks before using its compiled copy
# (automation/rules.py, webhooks/versions.py), replaced by triggers in the statement that
# changes a rule, whoever makes it: the services, the admin, a shell.

from typing import Any

from django.db import migrations

from webhooks.migrations._version_triggers import Watched, install, uninstall

RULES = Watched(
    table="automation_rule",
    name="automation.rules",
    columns=("id", "name", "enabled", "priority", "match", "actions", "stop", "created_at"),
)


def forwards(apps: Any, schema_editor: Any) -> None:
    install(RULES, schema_editor)


def backwards(apps: Any, schema_editor: Any) -> None:
    uninstall(RULES, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("automation", "0001_initial"),
        ("webhooks", "0005_configversion"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
