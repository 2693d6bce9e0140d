"""`/api/docs/`: drf-spectacular's Swagger UI, from our own static files (drf_spectacular_sidecar)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.views import SpectacularSwaggerView

from core.renderers import FastJSONRenderer


class ApiDocsView(SpectacularSwaggerView):
    """Swagger UI for the API's schema (`/api/schema/`)."""

    def get_renderers(self) -> list[Any]:
        # The page has only an HTML template renderer, with no template for DRF's OPTIONS
        # metadata (a 500): OPTIONS answers that metadata as JSON, as every other API view does.
        if self.request.method == "OPTIONS":
            return [FastJSONRenderer()]
        return list(super().get_renderers())
