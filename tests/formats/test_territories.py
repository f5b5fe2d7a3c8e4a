"""The ISO 3166 snapshot the offline tools read is Babel's list, and the form names it in each
language from Babel."""

from __future__ import annotations

import importlib.util

from babel import Locale

from portal.formats import questionnaire, territories
from portal.web.resources import PACKAGE

TOOL = PACKAGE.parent / "tools" / "territories.py"


def _tool() -> object:
    spec = importlib.util.spec_from_file_location("territories_tool", TOOL)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_snapshot_is_what_babel_gives_now() -> None:
    tool = _tool()
    assert (PACKAGE / "formats" / "territories.py").read_text(encoding="utf-8") == tool.render()  # type: ignore[attr-defined]


def test_the_list_is_iso_3166_with_kosovo_and_without_regions_or_reserved_codes() -> None:
    codes = set(territories.ENGLISH_NAMES)
    assert len(codes) == 250  # the 249 officially assigned codes, and XK
    assert {"KE", "UA", "PS", "TW", "XK", "SS"} <= codes
    assert not codes & {"001", "150", "EU", "EZ", "UN", "ZZ", "XA", "XB", "QO", "AC", "IC"}
    assert all(len(code) == 2 and code.isupper() for code in codes)


def test_the_country_questions_offer_every_code_and_other() -> None:
    for name in ("country", "state_responsible"):
        values = [value for value, _label in questionnaire.FIELDS_BY_NAME[name].choices]
        assert values == [*territories.ENGLISH_NAMES, "other"]


def test_every_code_has_a_name_in_every_language_of_the_site() -> None:
    for lang in ("ar", "zh", "en", "fr", "ru", "es"):
        names = Locale.parse(lang).territories
        assert all(names.get(code) for code in territories.ENGLISH_NAMES), lang
