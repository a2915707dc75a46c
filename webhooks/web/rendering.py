"""The pages' Jinja2 templates, compiled once when the app is made (`environment()`), and
the headers every page carries."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from webhooks.web.views import duration, short_time

TEMPLATES = ("base.html", "_macros.html", "repositories.html", "runs.html", "run.html",
             "job.html", "error.html")
STATIC = Path(__file__).parent / "static"

# No inline script and no other origin; colour spans may carry a `style` attribute (RGB
# colours), nothing else may.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        "style-src-attr 'unsafe-inline'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages of private repositories stay out of shared caches
}


def environment() -> jinja2.Environment:
    """Every template, loaded and compiled now (autoescaped: every value is HTML-escaped
    unless a template says it is already HTML, as a rendered log line is)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("webhooks.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = duration
    env.filters["short_time"] = short_time
    for name in TEMPLATES:
        env.get_template(name)
    return env


def page(request: Request, name: str, context: Mapping[str, Any], *, status: int = 200
         ) -> HTMLResponse:
    env: jinja2.Environment = request.app.state.pages
    html = env.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
