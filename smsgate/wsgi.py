"""WSGI entry point for gunicorn (HTTP: API, phone and provider endpoints, pages)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsgate.settings")

application = get_wsgi_application()
