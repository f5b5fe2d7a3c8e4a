"""Security headers on every response, set by the app so that they hold behind any proxy.

The Content-Security-Policy is built per page: `default-src 'none'` and then only what that
page uses. A page may hold a form posting to the site itself; a page that links the style
sheet may load it (the page's HTML says so); a view that loads the sealing script calls
`allow_script()`, which also lets the script send its upload. Scripts are never allowed by
looking at the page, so that markup slipped into a page cannot allow one. Responses made
outside Flask (a refused host name, a malformed request) carry `PLAIN_HEADERS`, whose policy
allows nothing at all.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from flask import Flask, Response, g, request

BASE_POLICY: dict[str, str] = {
    "default-src": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}
STYLE_POLICY: dict[str, str] = {"style-src": "'self'"}
SCRIPT_POLICY: dict[str, str] = {
    "script-src": "'self'",
    "connect-src": "'self'",
}
STYLESHEET = re.compile(rb"<link\b[^>]*\brel=\"?stylesheet\b", re.IGNORECASE)
# The pages' empty icon (`data:,`), which keeps browsers from asking for /favicon.ico; without
# an img-src that allows it, Chromium logs a CSP error on every page.
ICON_POLICY: dict[str, str] = {"img-src": "data:"}
EMPTY_ICON = re.compile(rb"<link\b[^>]*\brel=\"?icon\"?[^>]*\bhref=\"data:,\"", re.IGNORECASE)
# For a response that is not a page of the site: nothing may load, submit or frame it.
PLAIN_POLICY = "default-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

# Every feature a page could ask the browser for; the portal uses none of them.
DENIED_FEATURES = (
    "accelerometer",
    "ambient-light-sensor",
    "attribution-reporting",
    "autoplay",
    "bluetooth",
    "browsing-topics",
    "camera",
    "clipboard-read",
    "clipboard-write",
    "compute-pressure",
    "display-capture",
    "encrypted-media",
    "fullscreen",
    "gamepad",
    "geolocation",
    "gyroscope",
    "hid",
    "identity-credentials-get",
    "idle-detection",
    "local-fonts",
    "magnetometer",
    "microphone",
    "midi",
    "otp-credentials",
    "payment",
    "picture-in-picture",
    "publickey-credentials-create",
    "publickey-credentials-get",
    "screen-wake-lock",
    "serial",
    "speaker-selection",
    "storage-access",
    "usb",
    "web-share",
    "window-management",
    "xr-spatial-tracking",
)

HEADERS: dict[str, str] = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    # The embedder policy has no "same-origin" value; require-corp is its strict setting.
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": ", ".join(f"{feature}=()" for feature in DENIED_FEATURES),
    # Nothing a person saw or typed may stay in a browser's or a proxy's cache.
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}
# Headers that would name the software or let a client tell one response from another later.
REMOVED = ("ETag", "Last-Modified", "Server", "X-Powered-By")

PLAIN_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", PLAIN_POLICY),
    *HEADERS.items(),
)


def allow_script() -> None:
    """Let this page run the self-hosted sealing script and send its upload."""
    g.csp_script = True


def _links_stylesheet(response: Response) -> bool:
    if response.mimetype != "text/html" or response.is_streamed:
        return False
    return STYLESHEET.search(response.get_data()) is not None


def _links_empty_icon(response: Response) -> bool:
    if response.mimetype != "text/html" or response.is_streamed:
        return False
    return EMPTY_ICON.search(response.get_data()) is not None


def policy(response: Response) -> str:
    """The Content-Security-Policy of the current page."""
    directives = dict(BASE_POLICY)
    if _links_stylesheet(response):
        directives.update(STYLE_POLICY)
    if _links_empty_icon(response):
        directives.update(ICON_POLICY)
    if g.get("csp_script"):
        directives.update(SCRIPT_POLICY)
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def init_app(app: Flask, onion_location: str | None = None) -> None:
    """Add the headers to every response and remove those that name the software."""

    @app.after_request
    def _secure(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = policy(response)
        for name, value in HEADERS.items():
            response.headers[name] = value
        # Only a visit over the clearnet needs telling where the onion service is.
        if onion_location and not request.host.lower().split(":")[0].endswith(".onion"):
            response.headers["Onion-Location"] = onion_location.rstrip("/") + quote(request.path)
        for name in REMOVED:
            response.headers.pop(name, None)
        return response
