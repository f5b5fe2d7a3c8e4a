"""`python -m portal.demo` (what `make run` starts): both sites on this machine, for trying out.

On the first run it makes a DEMO team key pair in `instance/demo/` (never in `keys/`: a demo key
must never be mistaken for the team's), with its passphrase printed and kept beside it so
that the demo's submissions can be opened with `portal decrypt`; then `portal init`, a demo
staff account and `portal serve --demo` on
127.0.0.1. Every later run reuses the key and the data, and gives the demo account new
credentials.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click

# The demo runs from the checkout (`make run`), and keeps everything it makes there.
FOLDER = Path.cwd() / "instance" / "demo"
BANNER = "# DEMO KEY: for trying the portal out only. Never use it for real submissions.\n"
STAFF_NAME = "demo"


def demo_env(folder: Path) -> dict[str, str]:
    """The `PORTAL_*` settings of the demo deployment."""
    return {
        "PORTAL_DATA_DIR": str(folder / "data"),
        "PORTAL_TEAM_PUBLIC_KEY": str(folder / "team.pub"),
        "PORTAL_DATABASE_URL": f"sqlite:///{folder / 'data' / 'portal.sqlite3'}",
        "PORTAL_DEMO": "1",
        "PORTAL_HOSTNAMES": "localhost,127.0.0.1",
        "PORTAL_RATELIMIT_STORAGE_URI": "memory://",
    }


def make_key(folder: Path) -> None:
    """A DEMO team key pair, its passphrase printed and kept beside it."""
    from portal.cli.keys import keygen

    passphrase = "demo " + secrets.token_hex(8)
    passphrase_file = folder / "DEMO-passphrase.txt"
    passphrase_file.write_text(passphrase + "\n", encoding="utf-8")
    os.chmod(passphrase_file, 0o600)
    keygen.main(
        [
            "--private",
            str(folder / "DEMO-team.key"),
            "--public",
            str(folder / "team.pub"),
            "--passphrase-file",
            str(passphrase_file),
        ],
        standalone_mode=False,
    )
    public = folder / "team.pub"
    public.write_text(BANNER + public.read_text(encoding="utf-8"), encoding="utf-8")
    click.secho("\nA DEMO team key pair was made in " + str(folder), bold=True)
    click.echo(f"  private key: {folder / 'DEMO-team.key'}")
    click.echo(f"  passphrase:  {passphrase}   (also in {passphrase_file})")
    click.echo(
        "Open the demo's submissions with: portal decrypt --key "
        f"{folder / 'DEMO-team.key'} --passphrase-file {passphrase_file} "
        "--out CASES BUNDLE.tar\n"
    )


def staff_account() -> None:
    """Give the demo staff account new credentials, and print them."""
    from portal.server import accounts, services
    from portal.server.config import load_config

    state = services.load(load_config(os.environ))
    try:
        with state.sessions() as session:
            if accounts.find(session, STAFF_NAME) is None:
                credentials = accounts.create(session, STAFF_NAME, services.today())
            else:
                credentials = accounts.reset(session, STAFF_NAME)
            session.commit()
    finally:
        state.engine.dispose()
    click.secho("Demo staff account (new credentials at every start):", bold=True)
    click.echo(f"  name:       {credentials.name}")
    click.echo(f"  passphrase: {credentials.passphrase}")
    click.echo(f"  TOTP key:   {credentials.totp_secret}   (add it to an authenticator app)")
    click.echo(f"  or scan:    {credentials.provisioning_uri}\n")


@click.command()
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="The public site's port on 127.0.0.1.",
)
@click.option(
    "--staff-port",
    type=click.IntRange(1, 65535),
    default=8001,
    show_default=True,
    help="The staff site's port on 127.0.0.1.",
)
def demo(port: int, staff_port: int) -> None:
    """Set up the demo deployment if needed and serve both sites on 127.0.0.1."""
    from portal.cli import main

    FOLDER.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ.update(demo_env(FOLDER))
    if not (FOLDER / "team.pub").exists():
        make_key(FOLDER)
    try:
        main.main(["init"], standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from exc
    staff_account()
    click.secho("Starting the DEMO. Open the addresses below in a browser.", bold=True)
    main.main(
        ["serve", "--demo", "--port", str(port), "--staff-port", str(staff_port)],
        prog_name="portal",
    )


if __name__ == "__main__":
    demo()
