"""Security headers on every answer, API and console alike (`create_app` installs them).

- `Content-Security-Policy`: only our own scripts, styles, images and fonts; no inline script or
  style (the console serves its vendored htmx and its own stylesheet, and turns off htmx's
  injected styles and eval); no framing (`frame-ancestors 'none'`, and `X-Frame-Options: DENY`
  for older browsers); no plugins; forms post only to us. The offline Swagger UI at /api/docs
  is the one page with an inline script (flask-smorest's template), so it alone may run inline
  script and style; it carries no personal data.
- `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` (lead and slip ids in our
  URLs never leave in a Referer).
- `Strict-Transport-Security` when the request came over HTTPS (directly, or as the trusted
  proxy says through `X-Forwarded-Proto` with `PROXY_HOPS`).
- `Cache-Control: no-store` on every answer that did not choose its own caching: nearly every
  answer carries personal data or depends on who asks, so no browser, mini-program cache or
  proxy keeps it. Static files (console assets, Swagger UI assets) keep their own caching.
"""

from __future__ import annotations

from flask import Flask, Response, request

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: /api/docs only: flask-smorest's Swagger UI page starts itself with an inline script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"
#: Endpoints serving files that hold no personal data and may be cached as they say.
STATIC_ENDPOINTS = frozenset({"static", "console.static", "swagger_assets"})


def install(app: Flask) -> None:
    app.after_request(add_security_headers)


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    docs = request.path.rstrip("/") == "/api/docs"
    headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", HSTS)
    if request.endpoint not in STATIC_ENDPOINTS and "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
    return response
