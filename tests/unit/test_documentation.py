"""The docs list what the code has: every setting is in the README's configuration table."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented_in_the_readme(field: str) -> None:
    assert f"`CONVEYOR_{field.upper()}`" in README.read_text()
