"""The README's quickstart runs: blocks marked ``test`` run against a live ``conveyor dev``.

* ```` ```sh test ```` — shell commands; all such blocks run in order in one ``bash`` session
  (``set -euo pipefail``), as a person would type them in one terminal;
* ```` ```yaml test file=NAME ```` — written to ``NAME`` first (a file the commands use).

The stack runs in a temporary directory laid out like the repository for the commands
(``.venv`` links to the real one; ``.conveyor/`` is created by ``conveyor dev``). It listens on
free ports; the README's ``127.0.0.1:8000`` (API) and ``127.0.0.1:8765`` (example service) are
rewritten to them.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.network import free_port
from tests.integration.test_dev import DevProcess, clean_env, stop_and_check_nothing_left

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@dataclass(frozen=True)
class Block:
    line: int
    language: str
    attributes: dict[str, str]
    body: str


def readme_blocks(text: str) -> list[Block]:
    blocks = []
    for match in FENCE.finditer(text):
        words = match.group(1).split()
        if len(words) < 2 or "test" not in words[1:]:
            continue
        attributes = dict(word.split("=", 1) for word in words[1:] if "=" in word)
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(line, words[0], attributes, match.group(2)))
    return blocks


def test_the_extraction_finds_the_quickstart() -> None:
    blocks = readme_blocks(README.read_text())
    shell = [block for block in blocks if block.language == "sh"]
    files = [block for block in blocks if "file" in block.attributes]
    assert len(shell) >= 3
    assert any("task submit" in block.body for block in shell)
    assert all(block.language in {"sh", "bash", "yaml", "json"} for block in blocks)
    assert files, "the hello.yaml example is written by the test"
    assert not any("make run" in block.body for block in shell), "the test is the `make run`"


def test_readme_quickstart_runs_against_conveyor_dev(tmp_path: Path) -> None:
    blocks = readme_blocks(README.read_text())
    (tmp_path / ".venv").symlink_to(REPO_ROOT / ".venv")
    api_port, service_port = free_port(), free_port()

    def adapt(body: str) -> str:
        return body.replace("127.0.0.1:8000", f"127.0.0.1:{api_port}").replace(
            "127.0.0.1:8765", f"127.0.0.1:{service_port}"
        )

    script = ["set -euo pipefail"]
    for block in blocks:
        if "file" in block.attributes:
            (tmp_path / block.attributes["file"]).write_text(adapt(block.body))
        elif block.language in {"sh", "bash"}:
            script.append(f"echo '### README.md line {block.line}' >&2")
            script.append(adapt(block.body))

    dev = DevProcess(tmp_path, json_output=False, port=api_port, service_port=service_port)
    dev.start()
    try:
        dev.wait_ready()
        banner = "\n".join(dev.lines)
        assert "Conveyor is running" in banner
        assert "source .conveyor/dev.env" in banner  # the three commands to copy
        result = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=tmp_path,
            env=clean_env(tmp_path / "elsewhere"),  # only what the README sets up
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, (
            f"a README block failed (exit {result.returncode}):\n--- stdout ---\n"
            f"{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}\n"
            f"--- conveyor dev ---\n{dev.output()[-4000:]}"
        )
        assert "succeeded" in result.stdout + result.stderr
        stop_and_check_nothing_left(dev)
    finally:
        dev.kill()
