"""The rule that holds the package together, checked against the code.

`portal.formats` (the fixed formats, PyNaCl and the standard library) imports nothing else of
the portal; `portal.offline` (the team's air-gapped machine and the relays) imports only
`formats`; neither imports the web stack. The offline machine installs no Flask, and a relay's
laptop runs `portal seal` with nothing more than the base install.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import portal

PACKAGE = Path(portal.__file__).parent
# What the offline half must never load: the web stack, and the server half of the portal.
FORBIDDEN = (
    "flask",
    "flask_wtf",
    "flask_babel",
    "flask_limiter",
    "werkzeug",
    "jinja2",
    "sqlalchemy",
    "alembic",
    "gunicorn",
    "gevent",
    "redis",
    "psycopg",
    "portal.server",
    "portal.web",
    "portal.serve",
)
ALLOWED = {"formats": ("portal.formats",), "offline": ("portal.formats", "portal.offline")}
# The server's data and storage stand below the web layer and the serving processes.
SERVER_NEVER = ("portal.web", "portal.serve")
# The command line's toolkit, which only portal.cli uses.
TOOLKIT = ("click", "rich")
OFFLINE_COMMANDS = ("keygen", "fingerprint", "seal", "decrypt", "reply", "cases", "sealer")


def modules(room: str) -> list[str]:
    """Every module of `portal.<room>`, by dotted name."""
    found = []
    for path in sorted((PACKAGE / room).rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def portal_imports(module: str) -> list[tuple[int, str]]:
    """The portal modules that `module` imports anywhere in its text, with their lines."""
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = PACKAGE.parent / module.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.rsplit(".", node.level)[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            # `from portal import crypto` names a module, not an attribute of `portal`.
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "portal"]


def test_every_room_has_modules() -> None:
    assert len(modules("formats")) >= 6
    assert len(modules("offline")) >= 10


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_each_room_imports_only_what_the_rule_allows(room: str) -> None:
    broken = [
        f"{module}:{line} imports {name}"
        for module in modules(room)
        for line, name in portal_imports(module)
        if not name.startswith(tuple(f"{allowed}." for allowed in ALLOWED[room]))
    ]
    assert broken == []


def test_the_server_imports_neither_the_web_layer_nor_the_serving_processes() -> None:
    broken = [
        f"{module}:{line} imports {name}"
        for module in modules("server")
        for line, name in portal_imports(module)
        if name.startswith(tuple(f"{never}." for never in SERVER_NEVER))
    ]
    assert broken == []


def top_level_imports(module: str) -> list[str]:
    """The absolute module names that `module` imports anywhere in its text."""
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = PACKAGE.parent / module.replace(".", "/") / "__init__.py"
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.append(node.module or "")
    return names


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_no_room_of_the_offline_half_names_the_web_stack(room: str) -> None:
    broken = [
        f"{module} imports {name}"
        for module in modules(room)
        for name in top_level_imports(module)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert broken == []


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_the_command_line_toolkit_stays_in_the_commands(room: str) -> None:
    # click and rich are the commands' (portal.cli): the work below them raises exceptions
    # whose messages the commands show, so it can run without a terminal or a command line.
    broken = [
        f"{module} imports {name}"
        for module in modules(room)
        for name in top_level_imports(module)
        if name.split(".")[0] in TOOLKIT
    ]
    assert broken == []


def test_the_rule_catches_a_break() -> None:
    # The checker itself must see an import of the server half, wherever it stands.
    source = "def f():\n    from portal.server import storage\n"
    tree = ast.parse(source)
    imported = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]
    assert imported == ["portal.server.storage"]
    assert not imported[0].startswith(tuple(f"{a}." for a in ALLOWED["offline"]))


def test_the_offline_half_runs_with_the_web_stack_blocked() -> None:
    # Every module of formats/ and offline/, and every offline command, imported in a process
    # where importing any forbidden module fails: the proof that the offline machine needs none.
    names = modules("formats") + modules("offline")
    code = textwrap.dedent(
        f"""
        import importlib, importlib.abc, sys

        FORBIDDEN = {FORBIDDEN!r}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name in FORBIDDEN or name.startswith(tuple(f + "." for f in FORBIDDEN)):
                    raise ModuleNotFoundError(f"blocked: {{name}}", name=name)
                return None

        sys.meta_path.insert(0, Block())
        for name in {names!r}:
            importlib.import_module(name)
        from portal.cli import main
        for command in {OFFLINE_COMMANDS!r}:
            assert main.get_command(None, command) is not None, command
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN
                        or m.startswith(tuple(f + "." for f in FORBIDDEN)))
        print(",".join(loaded) or "none")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "none"


def test_the_server_commands_load_their_services_without_the_web_layer() -> None:
    # `portal init`, `export`, `purge` and `staff` need the database, not Flask.
    code = textwrap.dedent(
        """
        import sys
        import portal.cli.server, portal.cli.staff, portal.server.services
        web = ("flask", "werkzeug", "jinja2", "flask_limiter", "flask_babel", "flask_wtf")
        print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in web)) or "none")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "none"
