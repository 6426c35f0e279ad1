"""The README's promises: CI runs its test command, and every command it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [
        line for block in blocks for line in block.splitlines() if line and not line.startswith("#")
    ]


def test_quickstart_is_two_commands_and_ci_runs_the_test_one():
    commands = _quickstart_commands()
    assert len(commands) == 2
    main_cmd, test_cmd = commands
    assert "segstudio serve --demo" in main_cmd
    assert "pytest" in test_cmd
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci, "the README's test command must appear verbatim in .ci/run"


def test_every_command_in_the_readme_exists():
    from core.cli import COMMANDS, build_parser

    text = (ROOT / "README.md").read_text()
    named = set(re.findall(r"`segstudio (\w+)", text))
    assert named <= set(COMMANDS)
    build_parser()  # every command module imports and registers its arguments
