"""The `conveyor` CLI against a real database: apply, list, show, pause, resume, delete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from conveyor_cli.main import cli
from shared.database import create_engine_for, session_factory
from shared.models import Workflow

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "workflows"

VALID = """\
name: nightly
schedule: "0 3 * * *"
timezone: Europe/Berlin
steps:
  - name: work
    action: python
    function: conveyor.heartbeat
"""


def run(db_url: str, *args: str, home: Path | None = None) -> tuple[int, str, str]:
    env = {"CONVEYOR_DATABASE_URL": db_url, "CONVEYOR_LOG_LEVEL": "WARNING"}
    if home is not None:
        env["CONVEYOR_HOME"] = str(home)
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def workflow_count(db_url: str) -> int:
    engine = create_engine_for(db_url)
    try:
        with session_factory(engine)() as session:
            return int(session.scalar(select(func.count()).select_from(Workflow)) or 0)
    finally:
        engine.dispose()


def test_applying_the_examples_directory_creates_every_workflow(db_url: str) -> None:
    code, out, err = run(db_url, "workflow", "apply", "-f", str(EXAMPLES), "--json")
    assert code == 0, err
    results = json.loads(out)
    assert {r["action"] for r in results} == {"created"}
    assert workflow_count(db_url) == len(list(EXAMPLES.glob("*.yaml")))


def test_applying_the_same_file_twice_reports_it_unchanged(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "nightly.yaml"
    path.write_text(VALID)
    assert run(db_url, "workflow", "apply", "-f", str(path))[0] == 0
    code, out, _ = run(db_url, "workflow", "apply", "-f", str(path), "--json")
    assert code == 0
    assert json.loads(out)[0]["action"] == "unchanged"
    path.write_text(VALID.replace("0 3 * * *", "0 4 * * *"))
    code, out, _ = run(db_url, "workflow", "apply", "-f", str(path), "--json")
    assert json.loads(out)[0] == {
        **json.loads(out)[0],
        "action": "updated",
        "version": 2,
    }


def test_an_invalid_file_in_a_directory_exits_2_names_the_field_and_stores_nothing(
    db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "a-good.yaml").write_text(VALID)
    (tmp_path / "b-bad.yaml").write_text(
        VALID.replace("name: nightly", "name: broken").replace("action: python", "action: lamda")
    )
    code, out, err = run(db_url, "workflow", "apply", "-f", str(tmp_path))
    assert code == 2
    assert "b-bad.yaml" in err
    assert "steps[0].action" in err
    assert "lamda" in err
    assert out == ""
    assert workflow_count(db_url) == 0


def test_list_show_pause_resume_and_delete_round_trip(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "nightly.yaml"
    path.write_text(VALID)
    run(db_url, "workflow", "apply", "-f", str(path))

    code, out, _ = run(db_url, "workflow", "list", "--json")
    [item] = json.loads(out)
    assert item["name"] == "nightly"
    assert item["enabled"] is True
    assert item["next_run_at"] is not None

    code, out, _ = run(db_url, "workflow", "pause", "nightly", "--json")
    assert code == 0
    assert json.loads(out)["enabled"] is False
    assert json.loads(out)["next_run_at"] is None

    code, out, _ = run(db_url, "workflow", "resume", "nightly", "--json")
    assert json.loads(out)["enabled"] is True
    assert json.loads(out)["next_run_at"] is not None

    code, out, _ = run(db_url, "workflow", "show", "nightly", "--json")
    shown = json.loads(out)
    assert shown["definition"]["steps"][0]["function"] == "conveyor.heartbeat"
    assert shown["steps"] == ["work"]

    assert run(db_url, "workflow", "delete", "nightly")[0] == 0
    code, _, err = run(db_url, "workflow", "show", "nightly")
    assert code == 2
    assert "no workflow named 'nightly'" in err


@pytest.mark.parametrize("command", ["show", "pause", "resume", "delete"])
def test_naming_an_unknown_workflow_exits_2_with_a_message(sqlite_url: str, command: str) -> None:
    code, _, err = run(sqlite_url, "workflow", command, "nope")
    assert code == 2
    assert "no workflow named 'nope'" in err


def test_the_console_script_upgrades_and_applies_on_the_default_sqlite_database(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    conveyor = Path(sys.executable).parent / "conveyor"
    helped = subprocess.run(
        [conveyor, "--help"], capture_output=True, text=True, env=env, check=True
    )
    for command in ("db", "workflow", "schedule", "worker"):
        assert command in helped.stdout
    subprocess.run(
        [conveyor, "db", "upgrade"], cwd=tmp_path, env=env, check=True, capture_output=True
    )
    applied = subprocess.run(
        [conveyor, "workflow", "apply", "-f", str(EXAMPLES)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "created" in applied.stdout
    assert (tmp_path / ".conveyor" / "conveyor.db").exists()
