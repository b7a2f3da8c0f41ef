"""The pages people open in a browser: server-rendered HTML (Jinja2 templates) from the same litestar app.

``routes(settings)`` gives the page routes and the static files; ``PUBLIC_PATTERNS`` are the paths the bearer
middleware lets through (pages for the public need no token); ``security_headers`` sets the Content-Security-Policy
(no other host, ever) on every response; ``swagger_plugin()`` serves the OpenAPI UI from this server's files.
The staff console (``/login``, ``/staff/...``) is ``services.web.staff``; the inspectors' and reviewers' pages
(``/staff/visits``, ``/staff/review``) are ``services.web.field``."""

from typing import Any

from services.web import field, pages, staff
from services.web.pages import PUBLIC_PATTERNS, security_headers, template_config
from services.web.redoc import redoc_plugin
from services.web.swagger import swagger_plugin


def routes(rate_per_minute: int = 0) -> list[Any]:
    """Every page: the public ones, /static, the login page and the staff console."""
    return [*pages.routes(rate_per_minute), *staff.routes(rate_per_minute), field.field_router()]


__all__ = ["PUBLIC_PATTERNS", "redoc_plugin", "routes", "security_headers", "swagger_plugin", "template_config"]
