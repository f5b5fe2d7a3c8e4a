"""The database: Alembic migrations that build exactly the models' schema, on SQLite and on
PostgreSQL (`PORTAL_TEST_DATABASE_URL`), and a whole journey on each."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from conftest import DATABASE_URL, MINIMAL_REPORT, TeamKeys, csrf_token, receipt_of, reset_database
from sqlalchemy import create_engine, inspect
from test_export import export_and_decrypt
from test_uploads import FilePart, post_parts

from portal import create_app
from portal.cli import main
from portal.server import db
from portal.server.models import Base

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not DATABASE_URL, reason="needs PORTAL_TEST_DATABASE_URL (PostgreSQL)"
        ),
    ),
]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
        return
    reset_database(DATABASE_URL)
    try:
        yield DATABASE_URL
    finally:
        reset_database(DATABASE_URL)


def _differences(url: str) -> list[object]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))
    finally:
        engine.dispose()


def test_the_migrations_have_one_head() -> None:
    script = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_the_migrations_build_exactly_the_models_schema(url: str) -> None:
    db.upgrade(url)
    assert _differences(url) == []
    # Running them again changes nothing.
    db.upgrade(url)
    assert _differences(url) == []


def test_the_migrations_go_down_and_up_again(url: str) -> None:
    db.upgrade(url)
    command.downgrade(db.alembic_config(url), "base")
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    db.upgrade(url)
    assert _differences(url) == []


def test_the_constraints_follow_the_naming_convention(url: str) -> None:
    db.upgrade(url)
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        for table in Base.metadata.sorted_tables:
            assert inspector.get_pk_constraint(table.name)["name"] in (f"pk_{table.name}", None)
            for foreign in inspector.get_foreign_keys(table.name):
                assert foreign["name"] in (None,) or foreign["name"].startswith(f"fk_{table.name}_")
            for index in inspector.get_indexes(table.name):
                assert index["name"].startswith(("ix_", "uq_"))
    finally:
        engine.dispose()


def test_a_whole_journey_on_each_database(
    url: str,
    env: dict[str, str],
    team_keys: TeamKeys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = {**env, "PORTAL_DATABASE_URL": url}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    result = runner.invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    app = create_app("public", settings)
    app.config.update(TESTING=True)
    client = app.test_client()
    try:
        response = post_parts(
            client,
            "/es/submit",
            [
                ("csrf_token", csrf_token(client, "/es/submit")),
                *MINIMAL_REPORT.items(),
                FilePart("attachments", "prueba.pdf", b"%PDF evidence"),
            ],
        )
        assert response.status_code == 200
        receipt = receipt_of(response.get_data(as_text=True))
        page = client.post(
            "/es/follow-up",
            data={
                "receipt": receipt,
                "step": "open",
                "csrf_token": csrf_token(client, "/es/follow-up"),
            },
        ).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        response = client.post(
            "/es/follow-up",
            data={
                "receipt": receipt,
                "step": "add",
                "description": "más información",
                "csrf_token": token.group(1),
            },
        )
        assert response.status_code == 200
    finally:
        app.extensions["portal"].engine.dispose()
    report, follow_up = export_and_decrypt(runner, team_keys, tmp_path / "offline")
    assert report["locale"] == "es"
    assert report["attachments"] == {"prueba.pdf": b"%PDF evidence"}
    assert follow_up["fields"] == {"description": "más información"}
    assert follow_up["case"] == report["case"]
    # init on a database already up to date is harmless.
    result = runner.invoke(main, ["init"])
    assert result.exit_code == 0, result.output


def test_a_serving_worker_never_loads_alembic(initialised: dict[str, str]) -> None:
    # Migrating is `portal init`'s work; a worker that loaded Alembic would carry about 11 MB
    # more through every request.
    code = textwrap.dedent(
        f"""
        import sys
        import portal.serve.site, portal.serve.workers
        from portal import create_app
        env = {initialised!r}
        for site in ("public", "staff"):
            app = create_app(site, env)
            assert app.test_client().get("/en/submit" if site == "public" else "/").status_code
            app.extensions["portal"].engine.dispose()
        print(",".join(sorted(m for m in sys.modules if m.split(".")[0] == "alembic")) or "none")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "none"
