"""The `portal` command: offline tools for the team's machine and server tools for the host.

Commands load lazily, so `portal decrypt` on the offline machine never imports Flask or the
database layer, and a missing web stack there costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> "module:function". Offline commands live in modules that import only the
# cryptography and format modules.
COMMANDS: dict[str, str] = {
    "keygen": "portal.cli.keys:keygen",
    "fingerprint": "portal.cli.keys:fingerprint_command",
    "seal": "portal.cli.relay:seal",
    "decrypt": "portal.cli.decrypt:decrypt",
    "reply": "portal.cli.reply:reply",
    "sealer": "portal.cli.sealer:sealer_command",
    "cases": "portal.cli.cases:cases_command",
    "init": "portal.cli.server:init",
    "export": "portal.cli.server:export",
    "purge": "portal.cli.server:purge",
    "staff": "portal.cli.staff:staff",
    "tor-config": "portal.cli.tor:tor_config",
    "serve": "portal.cli.deploy:serve",
}
OFFLINE = frozenset({"keygen", "fingerprint", "seal", "decrypt", "reply", "sealer"})
SERVER_EXTRA = "pip install 'reprisals-portal[server]'"


def _needs_server(name: str, missing: str) -> click.Command:
    """A stand-in for a server command in an install without the web stack: one clear line."""

    def explain() -> None:
        raise click.ClickException(
            f"`portal {name}` runs on the server and needs the server profile "
            f"({missing} is not installed): {SERVER_EXTRA}"
        )

    return click.Command(
        name,
        callback=explain,
        help=f"(server only: {SERVER_EXTRA})",
        add_help_option=False,
        # Whatever follows the name, the answer is the same line.
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


class LazyGroup(click.Group):
    """A click group that imports each command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, loaded or not."""
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import and return one command."""
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("portal."):
                return None
            if cmd_name not in OFFLINE and exc.name:
                # The base install is the offline half: the web stack is the server extra.
                return _needs_server(cmd_name, exc.name.split(".")[0])
            raise
        command: Any = getattr(module, attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reprisals-portal")
def main() -> None:
    """Reprisals portal: seal, store and open reports of reprisals for cooperating with the UN."""
