"""Schedule commands: ``conveyor schedule preview``."""

from __future__ import annotations

import click

from conveyor_cli.context import emit_json, now_utc, parse_instant


@click.group()
def schedule() -> None:
    """Schedule expressions."""


@schedule.command("preview")
@click.argument("expression")
@click.option("--tz", "timezone", default="UTC", show_default=True, help="IANA time zone.")
@click.option("--after", help="ISO 8601 instant (default: now).")
@click.option("--count", default=5, show_default=True, type=click.IntRange(1, 1000))
@click.option("--dst", type=click.Choice(["vixie", "skip"]), default="vixie", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="A JSON array of ISO 8601 UTC strings.")
def schedule_preview(
    expression: str, timezone: str, after: str | None, count: int, dst: str, as_json: bool
) -> None:
    """Print the next COUNT fire times of EXPRESSION strictly after --after."""
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    from shared.models import iso  # noqa: PLC0415
    from shared.schedule import preview  # noqa: PLC0415

    start = parse_instant(after, option="--after") or now_utc()
    times = preview(expression, timezone, after=start, count=count, dst=dst)  # type: ignore[arg-type]
    if as_json:
        emit_json([iso(t) for t in times])
        return
    zone = ZoneInfo(timezone)
    for t in times:
        click.echo(f"{iso(t)}  ({t.astimezone(zone).isoformat()} {timezone})")
