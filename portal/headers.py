"""Security headers on every response, set by the app so that they hold behind any proxy.

The Content-Security-Policy is built per page: `default-src 'none'` and then only what that
page uses. A view that loads the sealing script calls `allow_script()`.
"""

from __future__ import annotations

from flask import Flask, Response, g, request

BASE_POLICY: dict[str, str] = {
    "default-src": "'none'",
    "style-src": "'self'",
    "img-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}

HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": ", ".join(
        f"{feature}=()" for feature in (
            "accelerometer", "autoplay", "bluetooth", "camera", "clipboard-read",
            "clipboard-write", "display-capture", "encrypted-media", "fullscreen", "geolocation",
            "gyroscope", "hid", "idle-detection", "interest-cohort", "magnetometer",
            "microphone", "midi", "payment", "picture-in-picture", "publickey-credentials-get",
            "screen-wake-lock", "serial", "usb", "web-share", "xr-spatial-tracking",
        )
    ),
    "Cache-Control": "no-store, max-age=0",
    "Pragma": "no-cache",
    "X-Robots-Tag": "noindex, nofollow",
}


def allow_script() -> None:
    """Let this page run the self-hosted sealing script and send its upload."""
    g.csp_script = True


def policy() -> str:
    """The Content-Security-Policy of the current page."""
    directives = dict(BASE_POLICY)
    if g.get("csp_script"):
        directives["script-src"] = "'self'"
        directives["connect-src"] = "'self'"
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def init_app(app: Flask, onion_location: str | None = None) -> None:
    """Add the headers to every response and remove those that name the software."""

    @app.after_request
    def _secure(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = policy()
        for name, value in HEADERS.items():
            response.headers[name] = value
        if onion_location:
            response.headers["Onion-Location"] = onion_location + request.path
        for name in ("ETag", "Last-Modified", "Server", "X-Powered-By"):
            response.headers.pop(name, None)
        return response
