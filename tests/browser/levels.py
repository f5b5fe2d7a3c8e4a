"""What a browser test runs: the security levels' prefs, the binaries, and whether they are here.

See `harness` for how the levels are modelled.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


LEVELS = ("standard", "safer", "safest")
FIREFOX_BINARY = "/usr/bin/firefox-esr"
CHROMIUM_BINARY = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
BROWSERS = (*(f"firefox-{level}" for level in LEVELS), "chromium-js", "chromium-nojs")
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]

PrefValue = bool | int | str

_SAFER_PREFS: dict[str, PrefValue] = {
    "javascript.options.ion": False,
    "javascript.options.baselinejit": False,
    "javascript.options.native_regexp": False,
    "javascript.options.asmjs": False,
    "javascript.options.wasm": False,
    "mathml.disabled": True,
    "gfx.font_rendering.graphite.enabled": False,
    "gfx.font_rendering.opentype_svg.enabled": False,
    "webgl.disabled": True,
}
SECURITY_LEVEL_PREFS: dict[str, dict[str, PrefValue]] = {
    "standard": {},
    "safer": dict(_SAFER_PREFS),
    "safest": {
        **_SAFER_PREFS,
        "svg.disabled": True,
        "javascript.enabled": False,
        "gfx.downloadable_fonts.enabled": False,
    },
}

# What Tor Browser sets at every level and a page can notice.
TOR_BROWSER_PREFS: dict[str, PrefValue] = {
    "privacy.resistFingerprinting": True,
    "browser.privatebrowsing.autostart": True,
    "privacy.spoof_english": 2,
    "intl.accept_languages": "en-US, en",
    "dom.securecontext.allowlist_onions": True,
    # HTTPS-Only mode, which leaves .onion and loopback addresses on plain http.
    "dom.security.https_only_mode": True,
    "dom.security.https_only_mode.upgrade_onion": False,
    "dom.security.https_only_mode.upgrade_local": False,
    "media.peerconnection.enabled": False,
}

# Firefox must not call home from the test machine: no updates, telemetry, studies, safe
# browsing lists, connectivity probes, prefetching or first-run pages.
QUIET_PREFS: dict[str, PrefValue] = {
    "app.update.disabledForTesting": True,
    "app.update.auto": False,
    "app.update.checkInstallTime": False,
    "app.normandy.enabled": False,
    "app.normandy.api_url": "",
    "app.shield.optoutstudies.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.page": 0,
    "browser.startup.homepage": "about:blank",
    "browser.startup.homepage_override.mstone": "ignore",
    "startup.homepage_welcome_url": "",
    "startup.homepage_welcome_url.additional": "",
    "browser.aboutwelcome.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.newtabpage.activity-stream.feeds.system.topstories": False,
    "browser.newtabpage.activity-stream.feeds.section.topstories": False,
    "browser.newtabpage.activity-stream.feeds.telemetry": False,
    "browser.newtabpage.activity-stream.telemetry": False,
    "browser.topsites.contile.enabled": False,
    "browser.ping-centre.telemetry": False,
    "browser.region.network.url": "",
    "browser.region.update.enabled": False,
    "browser.search.update": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.downloads.remote.enabled": False,
    "browser.safebrowsing.provider.google4.updateURL": "",
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.sessionstore.resume_from_crash": False,
    "browser.tabs.warnOnClose": False,
    "browser.translations.enable": False,
    "browser.ml.enable": False,
    "browser.urlbar.speculativeConnect.enabled": False,
    "browser.urlbar.suggest.searches": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.policy.dataSubmissionPolicyBypassNotification": True,
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.healthreport.service.enabled": False,
    "datareporting.usage.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.server": "",
    "toolkit.telemetry.archive.enabled": False,
    "toolkit.telemetry.newProfilePing.enabled": False,
    "toolkit.telemetry.shutdownPingSender.enabled": False,
    "toolkit.telemetry.firstShutdownPing.enabled": False,
    "toolkit.telemetry.updatePing.enabled": False,
    "toolkit.telemetry.bhrPing.enabled": False,
    "dom.push.enabled": False,
    "dom.push.connection.enabled": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.systemAddon.update.enabled": False,
    "extensions.blocklist.enabled": False,
    "geo.enabled": False,
    "geo.provider.network.url": "",
    "identity.fxaccounts.enabled": False,
    "media.gmp-manager.url": "",
    "media.gmp-gmpopenh264.enabled": False,
    "media.eme.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.http.speculative-parallel-limit": 0,
    "network.predictor.enabled": False,
    "network.prefetch-next": False,
    "network.trr.mode": 5,
    "security.OCSP.enabled": 0,
    "security.remote_settings.crlite_filters.enabled": False,
    "security.remote_settings.intermediates.enabled": False,
    # Release builds honour this exact value only with MOZ_DISABLE_NONLOCAL_CONNECTIONS set.
    "services.settings.server": "data:,#remote-settings-dummy/v1",
    # No proxy unless asked for: never the system's (environment) proxy settings.
    "network.proxy.type": 0,
}


def socks_proxy_prefs(host: str, port: int) -> dict[str, PrefValue]:
    """Prefs that send every request, loopback included, through a SOCKS5 proxy with remote DNS."""
    return {
        "network.proxy.type": 1,
        "network.proxy.socks": host,
        "network.proxy.socks_port": port,
        "network.proxy.socks_version": 5,
        "network.proxy.socks_remote_dns": True,
        "network.proxy.allow_hijacking_localhost": True,
        "network.proxy.no_proxies_on": "",
    }


def firefox_prefs(
    level: str,
    *,
    socks_proxy: tuple[str, int] | None = None,
    tor_browser: bool = True,
    extra: Mapping[str, PrefValue] | None = None,
) -> dict[str, PrefValue]:
    """All prefs for a Firefox profile at a Tor Browser security level."""
    if level not in SECURITY_LEVEL_PREFS:
        raise ValueError(f"unknown security level {level!r}; expected one of {LEVELS}")
    prefs: dict[str, PrefValue] = dict(QUIET_PREFS)
    if tor_browser:
        prefs.update(TOR_BROWSER_PREFS)
    prefs.update(SECURITY_LEVEL_PREFS[level])
    if socks_proxy is not None:
        prefs.update(socks_proxy_prefs(*socks_proxy))
    prefs.update(extra or {})
    return prefs


def write_user_js(profile_dir: Path, prefs: Mapping[str, PrefValue]) -> Path:
    """Write prefs as a profile's user.js (JSON literals are valid pref values)."""
    lines = [
        f"user_pref({json.dumps(name)}, {json.dumps(value)});" for name, value in prefs.items()
    ]
    path = profile_dir / "user.js"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- What is installed ---------------------------------------------------------------------


def firefox_unavailable(binary: str = FIREFOX_BINARY) -> str | None:
    """Why Firefox tests cannot run here (what to install), or None when they can."""
    if not (os.access(binary, os.X_OK) or shutil.which(binary)):
        return f"Firefox ESR not found at {binary}: apt-get install firefox-esr"
    if importlib.util.find_spec("marionette_driver") is None:
        return "marionette_driver is not installed: pip install marionette-driver==3.7.1"
    return None


def chromium_unavailable(binary: str = CHROMIUM_BINARY) -> str | None:
    """Why Chromium tests cannot run here (what to install), or None when they can."""
    if not (os.access(binary, os.X_OK) or shutil.which(binary)):
        return f"Chromium not found at {binary}: apt-get install chromium"
    if importlib.util.find_spec("playwright") is None:
        return (
            "Playwright is not installed: pip install playwright==1.65.2 (no `playwright install`)"
        )
    return None


def browser_unavailable(spec: str) -> str | None:
    """Why the browser named by spec (one of BROWSERS) cannot run here, or None."""
    if spec not in BROWSERS:
        raise ValueError(f"unknown browser {spec!r}; expected one of {BROWSERS}")
    return firefox_unavailable() if spec.startswith("firefox-") else chromium_unavailable()
