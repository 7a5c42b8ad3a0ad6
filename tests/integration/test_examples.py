"""Every script in examples/ runs end to end on the real default model in a fresh process, exits 0 and writes
its output file; a script without an entry here fails the first test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# script: (the file it writes under --out, whether it runs over ~20 s on two CPU cores)
CASES: dict[str, tuple[str, bool]] = {
    "export_gguf.py": ("steer.gguf", False),
    "extract_and_validate.py": ("vectors/report.html", True),
    "stability_study.py": ("stability.json", True),
    "steer_and_monitor.py": ("replies.json", True),
    "sweep.py": ("sweep/sweep.json", True),
}


def test_every_example_has_a_test() -> None:
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    missing = sorted(set(scripts) ^ set(CASES))
    assert scripts == sorted(CASES), f"give each script in examples/ an entry in CASES (and drop gone ones): {missing}"


def _case(script: str) -> object:
    marks = [pytest.mark.integration, *([pytest.mark.slow] if CASES[script][1] else [])]
    return pytest.param(script, marks=marks, id=script.removesuffix(".py"))


@pytest.mark.parametrize("script", [_case(s) for s in CASES])
def test_example_runs_and_writes_its_output(script: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(EXAMPLES / script), "--out", str(out)], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert done.returncode == 0, f"{script} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert (out / CASES[script][0]).is_file(), f"{script} did not write {CASES[script][0]}\n{done.stdout}"
    assert done.stdout.strip(), f"{script} printed nothing of what it found"
