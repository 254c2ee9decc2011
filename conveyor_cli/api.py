"""``conveyor api``: serve the HTTP API locally with uvicorn."""

from __future__ import annotations

import click

from conveyor_cli.context import CliContext, pass_state
from shared.errors import ConfigurationError


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--access-log/--no-access-log", default=False, help="uvicorn's own access log.")
@pass_state
def api_command(state: CliContext, host: str, port: int, access_log: bool) -> None:
    """Serve the API (OpenAPI at /openapi.json, docs at /docs)."""
    try:
        import uvicorn  # noqa: PLC0415
    except ImportError:
        raise ConfigurationError(
            "conveyor api needs uvicorn: pip install 'conveyor[api,serve]'"
        ) from None

    from api.app import create_app  # noqa: PLC0415
    from api.runtime import Runtime, freeze_startup_objects  # noqa: PLC0415

    runtime = Runtime.from_settings(state.settings, background_dispatch=True)
    app = create_app(runtime=runtime)
    freeze_startup_objects()
    click.echo(f"conveyor api on http://{host}:{port} (docs: /docs)", err=True)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            access_log=access_log,
            log_config=None,
            log_level=state.settings.log_level.lower(),
            server_header=False,
        )
    finally:
        runtime.close()
