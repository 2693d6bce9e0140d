import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")

# Django must be set up before anything imports models (the WebSocket routing does).
django.setup(set_prefix=False)

from chatproject.asgi_handler import ReusedThreadASGIHandler  # noqa: E402

django_asgi_app = ReusedThreadASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chatproject.body_limits import with_body_limit  # noqa: E402
from files.streaming import is_upload, with_upload_routes  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": with_upload_routes(with_body_limit(django_asgi_app, exempt=is_upload)),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

# What start-up created (modules, settings, URL patterns) lives as long as the process: taking it
# out of the collector's generations keeps full collections, which land inside some request, short.
gc.freeze()
