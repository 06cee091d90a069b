"""ASGI entry point (`daphne smsgate.asgi:application`): HTTP plus websockets under /ws/.

HTTP goes to Django, except the app phones' event streams (smsgate.routing.http_urlpatterns),
which are long-lived and must not hold a sync worker each."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsgate.settings")

# Django must be set up before anything imports models (the routing modules do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402

from smsgate.routing import http_urlpatterns, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # channels routes ASGI apps with Django's re_path, whose stubs expect a view.
        "http": URLRouter([*http_urlpatterns, re_path(r"", django_asgi_app)]),  # type: ignore[arg-type]
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
