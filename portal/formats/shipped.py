"""Where the files the package ships are found: templates, static files and catalogues.

They travel in the wheel (setup.cfg's package_data) and are found through the package with
`importlib.resources`, never through the working folder, so an installed portal and a checkout
behave alike. The sites serve them and the offline sealer embeds the sealing script and the
catalogues, so their places are written here, once, for both halves.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PACKAGE = Path(str(files("portal")))
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"
TRANSLATIONS = PACKAGE / "translations"
SCRIPT = STATIC / "portal.js"
SEALER_SCRIPT = STATIC / "sealer.js"
STYLESHEET = STATIC / "portal.css"
# The public site's languages, in the order the language menu shows them.
LANGUAGES = ("ar", "zh", "en", "fr", "ru", "es")
