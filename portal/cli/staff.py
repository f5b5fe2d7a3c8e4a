"""`portal staff`: add, list, remove, reset and unlock the accounts of the staff site.

Run on the server, with the same `PORTAL_*` environment as the sites. A new account's
passphrase and TOTP secret are printed once, with the provisioning URI and a QR code drawn in
the terminal, and never again: the server keeps only the passphrase's hash.
"""

from __future__ import annotations

import io

import click
import segno

from portal.cli.server import command_services
from portal.server import accounts, audit
from portal.server.services import today


def _qr(uri: str) -> str:
    out = io.StringIO()
    # Compact: two rows of modules per line, so the code fits an 80 by 24 terminal.
    segno.make(uri, error="m").terminal(out=out, compact=True)
    return out.getvalue()


def _show(credentials: accounts.Credentials, qr: bool) -> None:
    click.echo(f"Account:     {credentials.name}")
    click.echo(f"Passphrase:  {credentials.passphrase}")
    click.echo(f"TOTP secret: {credentials.totp_secret}")
    click.echo(f"TOTP URI:    {credentials.provisioning_uri}")
    if qr:
        click.echo(
            "\nScan this with the authenticator app (FreeOTP, Aegis, Google Authenticator, ...):\n"
        )
        click.echo(_qr(credentials.provisioning_uri))
    click.echo(
        "\nThis is shown once and cannot be shown again. Give the passphrase to its owner in "
        "person or through a channel you trust; they keep it in their memory or a password "
        "manager. Clear this terminal's scrollback when they are done.",
        err=True,
    )


@click.group()
def staff() -> None:
    """Manage the accounts of the staff site."""


@staff.command()
@click.argument("name")
@click.option("--no-qr", is_flag=True, help="Do not draw the QR code (the URI is printed anyway).")
def add(name: str, no_qr: bool) -> None:
    """Create an account with a generated passphrase and a TOTP secret, shown once."""
    with command_services() as services, services.sessions() as session:
        try:
            credentials = accounts.create(session, name, today())
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        audit.record(session, audit.COMMAND_LINE, "account-added", credentials.name)
        session.commit()
    click.echo(f"Staff account {credentials.name!r} created.\n")
    _show(credentials, not no_qr)


@staff.command("list")
def list_accounts() -> None:
    """List the accounts (never their secrets)."""
    moment = accounts.now()
    with command_services() as services, services.sessions() as session:
        members = accounts.all_members(session)
    if not members:
        click.echo("No staff accounts. Add one with `portal staff add NAME`.")
        return
    click.echo(f"{'name':<32}  {'created':<10}  state")
    for member in members:
        until = accounts.locked_until(member, moment)
        if until is not None:
            state = f"locked until {until:%Y-%m-%d %H:%M} UTC"
        elif member.failed_logins:
            state = f"{member.failed_logins} failed sign-in(s) since the last success"
        else:
            state = "active"
        click.echo(f"{member.name:<32}  {member.created_day.isoformat():<10}  {state}")


@staff.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def remove(name: str, yes: bool) -> None:
    """Delete an account; its open session ends at once."""
    with command_services() as services, services.sessions() as session:
        try:
            member = accounts.get(session, name)
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        if not yes:
            click.confirm(f"Remove the staff account {member.name!r}?", abort=True)
        accounts.remove(session, member.name)
        audit.record(session, audit.COMMAND_LINE, "account-removed", member.name)
        session.commit()
    click.echo(f"Staff account {member.name!r} removed.")


@staff.command()
@click.argument("name")
@click.option("--no-qr", is_flag=True, help="Do not draw the QR code (the URI is printed anyway).")
def reset(name: str, no_qr: bool) -> None:
    """Give an account a new passphrase and TOTP secret (shown once); ends its session."""
    with command_services() as services, services.sessions() as session:
        try:
            credentials = accounts.reset(session, name)
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        audit.record(session, audit.COMMAND_LINE, "account-reset", credentials.name)
        session.commit()
    click.echo(
        f"Staff account {credentials.name!r} has a new passphrase and a new TOTP "
        "secret; the old ones no longer work.\n"
    )
    _show(credentials, not no_qr)


@staff.command()
@click.argument("name")
def unlock(name: str) -> None:
    """Clear an account's failed sign-ins and lock."""
    with command_services() as services, services.sessions() as session:
        try:
            member = accounts.get(session, name)
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        accounts.unlock(member)
        audit.record(session, audit.COMMAND_LINE, "account-unlocked", member.name)
        session.commit()
    click.echo(f"Staff account {member.name!r} is unlocked.")
