"""API key commands: create (prints the key once), revoke, list, usage."""

from __future__ import annotations

import click

from conveyor_cli.context import CliContext, emit_json, now_utc, pass_state

SCOPE_HELP = (
    "Scope to grant (repeatable): tasks:read, tasks:write, workflows:read, workflows:write, "
    "admin. Default: tasks:read + tasks:write."
)


@click.group("apikey")
def apikey() -> None:
    """Create, revoke and inspect API keys."""


@apikey.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, help=SCOPE_HELP)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def apikey_create(state: CliContext, name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Create a key named NAME. The key is printed once and cannot be shown again."""
    from shared.apikeys import create_key  # noqa: PLC0415

    with state.transaction() as session:
        created = create_key(session, name, scopes, now_utc())
    if as_json:
        emit_json({"name": created.name, "key": created.key, "scopes": created.scopes})
        return
    click.echo(created.key)
    click.echo(
        f"created API key {created.name!r} with scopes {', '.join(created.scopes)}; "
        "store it now: it is not shown again",
        err=True,
    )


@apikey.command("revoke")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def apikey_revoke(state: CliContext, name: str, as_json: bool) -> None:
    """Revoke the key named NAME (it stops working at once)."""
    from shared.apikeys import describe_key, revoke_key  # noqa: PLC0415

    with state.transaction() as session:
        item = describe_key(revoke_key(session, name, now_utc()))
    if as_json:
        emit_json(item)
    else:
        click.echo(f"revoked {name} (at {item['revoked_at']})")


@apikey.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def apikey_list(state: CliContext, as_json: bool) -> None:
    """List keys (names, prefixes and scopes; never the secrets)."""
    from shared.apikeys import describe_key, list_keys  # noqa: PLC0415

    with state.transaction() as session:
        items = [describe_key(key) for key in list_keys(session)]
    if as_json:
        emit_json(items)
        return
    if not items:
        click.echo("no API keys (create one with: conveyor apikey create NAME)")
        return
    click.echo(f"{'NAME':24} {'PREFIX':14} {'STATE':8} {'LAST USED':22} SCOPES")
    for item in items:
        click.echo(
            f"{item['name']:24} {item['prefix']:14} "
            f"{'active' if item['active'] else 'revoked':8} {item['last_used_at'] or '-':22} "
            f"{' '.join(item['scopes'])}"
        )


@apikey.command("usage")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def apikey_usage(state: CliContext, name: str, as_json: bool) -> None:
    """Calls made with NAME per month (UTC), newest first."""
    from shared.apikeys import usage  # noqa: PLC0415

    with state.transaction() as session:
        rows = usage(session, name)
    if as_json:
        emit_json(
            {
                "name": name,
                "months": [{"period": period, "calls": calls} for period, calls in rows],
                "total": sum(calls for _, calls in rows),
            }
        )
        return
    if not rows:
        click.echo(f"{name}: no calls yet")
        return
    click.echo(f"{'MONTH':8} CALLS")
    for period, calls in rows:
        click.echo(f"{period:8} {calls}")
