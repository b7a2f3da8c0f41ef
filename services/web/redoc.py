"""ReDoc from this server's own files (services/web/static/vendor/redoc, redoc 2.5.4): a bureau's intranet has no
CDN. The page has no inline script (the CSP forbids it): /static/redoc-init.js loads /schema/openapi.json."""

from typing import Any

from litestar import Request
from litestar.openapi.plugins import RedocRenderPlugin

VENDOR = "/static/vendor/redoc"


class OfflineRedocRenderPlugin(RedocRenderPlugin):
    """ReDoc at /schema/redoc whose script comes from this server, without Google Fonts."""

    def __init__(self) -> None:
        super().__init__(js_url=f"{VENDOR}/redoc.standalone.js", google_fonts=False,
                         favicon="<link rel='icon' href='/static/favicon.svg' type='image/svg+xml'>")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = str(openapi_schema["info"]["title"])
        return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} 接口文档（ReDoc）</title>
{self.favicon}
<script src="{self.js_url}"></script>
<script src="/static/redoc-init.js" defer></script>
</head>
<body>
<div id="redoc-container"></div>
</body>
</html>
""".encode()


def redoc_plugin() -> OfflineRedocRenderPlugin:
    return OfflineRedocRenderPlugin()
