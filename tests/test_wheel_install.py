"""A built wheel, installed away from this checkout, lists and runs the shipped suites.

Caveats first: the wheel is built offline from a copy of the sources with this environment's
setuptools (no build isolation, so nothing is downloaded), and installed with ``--no-deps`` into
a fresh venv that sees this environment's packages (torch and the rest) through a plain path in
a ``.pth`` file. That path line does not run this environment's own ``.pth`` files, so the
editable install's import hook, which points back at this checkout, never runs in the venv:
whatever the venv imports as attnprof comes from the wheel. About 13 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("imagenet", "detection", "paper-sge", "smoke")


def _run(args: list, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["COLUMNS"] = "200"  # rich wraps tables at 80 columns when not on a terminal
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stderr[-3000:]}"
    return result.stdout


def _build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    for name in ("attnprof", "suites"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", dist, "."], cwd=source)
    (wheel,) = dist.glob("*.whl")
    return wheel


def test_wheel_install_finds_and_runs_the_shipped_suites(tmp_path):
    wheel = _build_wheel(tmp_path)
    packed = {str(Path(name).parent) for name in zipfile.ZipFile(wheel).namelist()}
    code = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "attnprof").rglob("*.py")}
    assert code <= packed, f"add to pyproject.toml's packages: {sorted(code - packed)}"

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    venv_site = Path(_run([python, "-c", "import site; print(site.getsitepackages()[0])"],
                          cwd=tmp_path).strip())
    outer = [*site.getsitepackages(), site.getusersitepackages()]
    (venv_site / "outer_environment.pth").write_text("\n".join(outer) + "\n")
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q",
          wheel], cwd=tmp_path)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    installed = Path(_run([python, "-c", "import attnprof; print(attnprof.__file__)"],
                          cwd=elsewhere).strip())
    assert installed.is_relative_to(venv_site) and not installed.is_relative_to(ROOT)

    listing = _run([venv / "bin" / "attnprof", "list"], cwd=elsewhere)
    assert all(name in listing for name in SHIPPED), listing
    _run([venv / "bin" / "attnprof", "run", "--suite", "smoke", "--skip-latency", "--quiet",
          "--out", "out"], cwd=elsewhere)
    results = json.loads((elsewhere / "out" / "results.json").read_text(encoding="utf-8"))
    assert results["suite"]["source"] == "suites/smoke.toml"
