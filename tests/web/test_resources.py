"""The sites find their templates, stylesheets, script and catalogues inside the package, and
refuse to start, in one line, when any of them is missing."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
from conftest import MINIMAL_REPORT, csrf_token, receipt_of

import portal
from portal import create_app
from portal.web import resources


def test_everything_is_found_through_the_package_not_the_working_folder(
    tmp_path: Path, initialised: dict[str, str]
) -> None:
    package = Path(portal.__file__).resolve().parent
    assert package / "templates" == resources.TEMPLATES
    assert package / "static" == resources.STATIC
    assert package / "translations" == resources.TRANSLATIONS
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = Path.cwd()
    os.chdir(elsewhere)
    app = create_app("public", initialised)
    try:
        with app.test_client() as client:
            for path in ("/fr/", "/static/portal.css", "/ar/submit"):
                with client.get(path) as response:
                    assert response.status_code == 200, path
    finally:
        os.chdir(before)
        app.extensions["portal"].engine.dispose()


@pytest.fixture
def copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the package's resources that the factory reads instead of the real ones."""
    copy = tmp_path / "package"
    for name in ("templates", "static", "translations"):
        shutil.copytree(resources.PACKAGE / name, copy / name)
    monkeypatch.setattr(resources, "PACKAGE", copy)
    monkeypatch.setattr(resources, "TEMPLATES", copy / "templates")
    monkeypatch.setattr(resources, "STATIC", copy / "static")
    monkeypatch.setattr(resources, "TRANSLATIONS", copy / "translations")
    return copy


@pytest.mark.parametrize(
    ("site", "missing"),
    [
        ("public", "templates/base.html"),
        ("public", "templates/public/index.html"),
        ("public", "static/portal.css"),
        ("public", "translations/ar/LC_MESSAGES/messages.mo"),
        ("staff", "templates/staff/login.html"),
        ("staff", "static/staff.css"),
    ],
)
def test_a_site_without_what_it_serves_refuses_to_start_in_one_line(
    copied: Path, initialised: dict[str, str], site: str, missing: str
) -> None:
    (copied / missing).unlink()
    with pytest.raises(resources.MissingResource) as refused:
        create_app(site, initialised)
    message = str(refused.value)
    assert missing in message
    assert "\n" not in message


def test_a_missing_script_is_said_once_and_the_form_works_without_it(
    tmp_path: Path,
    initialised: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    absent = tmp_path / "portal.js"
    monkeypatch.setattr(portal, "SCRIPT", absent)
    caplog.set_level(logging.WARNING, logger="portal")
    apps = [create_app("public", initialised) for _ in range(3)]
    try:
        warnings = [record for record in caplog.records if str(absent) in record.getMessage()]
        assert len(warnings) == 1
        with apps[0].test_client() as client:
            with client.get("/en/submit") as page:
                assert page.status_code == 200
                assert "portal.js" not in page.get_data(as_text=True)
            report = {**MINIMAL_REPORT, "csrf_token": csrf_token(client)}
            with client.post("/en/submit", data=report) as done:
                assert done.status_code == 200
                assert receipt_of(done.get_data(as_text=True))
    finally:
        for app in apps:
            app.extensions["portal"].engine.dispose()
