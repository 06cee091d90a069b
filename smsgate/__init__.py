"""smsgate: the project package (settings, urls, ASGI/WSGI, Celery app, API-key auth)."""

from smsgate.celery import app as celery_app

__all__ = ["celery_app"]
