from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from smsgate.models import Role
from smsgate.services import create_api_key


class Command(BaseCommand):
    help = "Create an API key and print it, alone, on stdout (it is shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--role", choices=Role.values, default=Role.ADMIN)

    def handle(self, *args: Any, **options: Any) -> None:
        issued = create_api_key(name=options["name"], role=options["role"])
        self.stdout.write(issued.plaintext)
