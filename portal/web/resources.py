"""What the sites serve from inside the installed package: templates, static files, catalogues.

Their places are in `portal.formats.shipped` (the offline sealer embeds some of them too).
`check` runs when a site is built: a portal that cannot render its pages stops
at start with a message naming what is missing, instead of dropping every request later.
"""

from __future__ import annotations

import logging
from pathlib import Path

from portal.formats.shipped import LANGUAGES, PACKAGE, SCRIPT, STATIC, TEMPLATES, TRANSLATIONS

__all__ = ["PACKAGE", "SCRIPT", "STATIC", "TEMPLATES", "TRANSLATIONS", "check"]
# The pages every site renders first; if these are there, the rest of the tree came with them.
TEMPLATE_FILES = ("base.html", "macros.html", "errors/error.html")
SITE_TEMPLATES = {"public": "public/index.html", "staff": "staff/login.html"}
STYLESHEETS = {"public": "portal.css", "staff": "staff.css"}

log = logging.getLogger("portal")


class MissingResource(RuntimeError):
    """The installed package lacks something the site cannot serve without."""


def check(site: str) -> None:
    """Raise MissingResource, in one line, when a template, stylesheet or catalogue is missing."""
    wanted = [TEMPLATES / name for name in (*TEMPLATE_FILES, SITE_TEMPLATES[site])]
    wanted.append(STATIC / STYLESHEETS[site])
    if site == "public":
        wanted += [TRANSLATIONS / code / "LC_MESSAGES" / "messages.mo" for code in LANGUAGES]
    missing = [path for path in wanted if not path.is_file()]
    if missing:
        names = ", ".join(str(path.relative_to(PACKAGE)) for path in missing)
        hint = (
            " (compile the catalogues: pybabel compile -d portal/translations)"
            if any(path.suffix == ".mo" for path in missing)
            else ""
        )
        raise MissingResource(
            f"The portal package at {PACKAGE} is incomplete, missing {names}{hint}: "
            "install it from a wheel made by `make dist`, or run `make setup` in a checkout."
        )


_warned: set[Path] = set()


def script_missing_warning(path: Path) -> None:
    """Say once per process that the sealing script is not built, so only the no-JS path runs."""
    if path in _warned:
        return
    _warned.add(path)
    log.warning(
        "%s is missing: the public site serves the form without browser sealing "
        "(build it with `npm ci && npm run build`, or install a wheel made by `make dist`).",
        path,
    )
