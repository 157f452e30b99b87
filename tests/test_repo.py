"""The repository's promises: CI runs the README's test command, and the layout is complete."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT


def _readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [blocks[0].strip(), blocks[1].strip()]


def test_ci_runs_exactly_the_readme_test_command():
    _open, test = _readme_commands()
    assert "pytest" in test and "pip install" in test
    script = [ln for ln in (ROOT / ".ci/run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert script[-1] == test, f".ci/run ends with {script[-1]!r}, README says {test!r}"


def test_readme_open_command_installs_and_opens():
    open_cmd, _test = _readme_commands()
    assert "pip install" in open_cmd and "coursekit open" in open_cmd


def test_layout():
    for path in ("README.md", "pyproject.toml", "environment.yml", "nbgrader_config.py", "coursekit",
                 "solutions", "lessons", "tests", "bench", ".ci/run"):
        assert (ROOT / path).exists(), path


def test_nbgrader_config_maps_source_and_release():
    code = ("import runpy; from traitlets.config import Config; c = Config(); "
            f"runpy.run_path({str(ROOT / 'nbgrader_config.py')!r}, init_globals={{'get_config': lambda: c}}); "
            "print(c.CourseDirectory.source_directory, c.CourseDirectory.release_directory)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["solutions", "lessons"]
