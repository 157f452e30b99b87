"""Shared fixtures: the repository root, course copies and submissions built from the notebooks."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

try:  # triton imported after TensorFlow segfaults (TF 2.21 + torch 2.14 CUDA wheels): load it first
    import triton  # noqa: F401
except ImportError:
    pass

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# Every subprocess (nbgrader, kernels, alembic) must come from this interpreter's environment.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

# pytest -n 2 runs two workers, each with its own kernels, on a 2-core machine. PyTorch's OpenMP
# threads spin while waiting, so two processes using every core run ~30x slower than one; give each
# process (and every kernel it starts) one thread. Same caps as `coursekit grade --jobs`.
if os.environ.get("PYTEST_XDIST_WORKER"):
    from coursekit.grader import thread_env

    os.environ.update(thread_env(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "2"))))


def pytest_addoption(parser, pluginmanager):
    # pyproject's addopts pass `--dist worksteal`, an xdist option: accept (and ignore) it when xdist
    # is switched off (`-p no:xdist`), or such a run stops at "unrecognized arguments: --dist".
    if not pluginmanager.has_plugin("xdist"):
        parser.addoption("--dist", default="no", help="ignored: pytest-xdist is disabled (-p no:xdist)")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def run_shared(tmp_path_factory) -> Path:
    """A folder that every xdist worker of this test run sees, and no other run."""
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    shared.mkdir(exist_ok=True)
    return shared


def publish(src: Path, dest: Path) -> None:
    """Copy `src` to `dest` so that a reader in another process sees all of it or nothing."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    shutil.copy(src, part)
    os.replace(part, dest)


def copy_course(dest: Path) -> Path:
    """A throwaway course: config, solutions and lessons, and an empty gradebook."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", dest / "nbgrader_config.py")
    shutil.copytree(ROOT / "solutions", dest / "solutions")
    shutil.copytree(ROOT / "lessons", dest / "lessons")
    return dest


SITE_TEST = "test_site_has_every_lesson_page_with_its_figures_and_no_solutions"


def pytest_collection_modifyitems(session, config, items):
    """Longest tests first, so the minutes-long autograde runs start early. With xdist's default
    `--dist load` a worker that finished its share sat idle for ~20 min while the other worked through
    its queue; pyproject's addopts therefore use `--dist worksteal`, and this order keeps the tail short."""
    def rank(item) -> int:
        if item.originalname == "test_autograde_solution_untouched_and_planted":
            return 0
        if item.originalname == SITE_TEST:  # after the autograde runs whose executed solutions it reuses
            return 3
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=rank)  # stable: keeps file order within a rank
