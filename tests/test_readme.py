"""The README's two commands are the ones CI and newcomers run."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|bash|console)\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_test_command_verbatim():
    ci_lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))
    ]
    assert len(ci_lines) == 1
    assert ci_lines[0] in _readme_commands()
    assert ci_lines[0].endswith("python -m pytest")


def test_readme_pins_the_cpu_torch_build_in_both_commands():
    commands = [c for c in _readme_commands() if "pip install" in c]
    assert len(commands) >= 2
    assert all("pip install torch==2.13.0" in c for c in commands)
    assert any(c.endswith("attnprof run --suite imagenet") for c in commands)
