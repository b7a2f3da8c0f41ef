"""Swagger UI from this server's own files (services/web/static/vendor/swagger-ui, swagger-ui-dist 5.35.0):
a bureau's intranet has no CDN. The page has no inline script (the CSP forbids it): /static/swagger-init.js
loads the schema from /schema/openapi.json."""

from typing import Any

from litestar import Request
from litestar.openapi.plugins import SwaggerRenderPlugin

VENDOR = "/static/vendor/swagger-ui"


class OfflineSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Swagger UI whose scripts, styles and icon all come from this server."""

    def __init__(self) -> None:
        super().__init__(
            js_url=f"{VENDOR}/swagger-ui-bundle.js",
            css_url=f"{VENDOR}/swagger-ui.css",
            standalone_preset_js_url=f"{VENDOR}/swagger-ui-standalone-preset.js",
            favicon="<link rel='icon' href='/static/favicon.svg' type='image/svg+xml'>",
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = str(openapi_schema["info"]["title"])
        return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} 接口文档</title>
{self.favicon}
<link href="{self.css_url}" rel="stylesheet">
<script src="{self.js_url}"></script>
<script src="{self.standalone_preset_js_url}"></script>
<script src="/static/swagger-init.js" defer></script>
</head>
<body>
<div id="swagger-container"></div>
</body>
</html>
""".encode()


def swagger_plugin() -> OfflineSwaggerRenderPlugin:
    return OfflineSwaggerRenderPlugin()
