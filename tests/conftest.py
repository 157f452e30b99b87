"""Shared fixtures: the repository root, course copies and submissions built from the notebooks."""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

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
    from coursekit.autograde.runner import thread_env

    os.environ.update(thread_env(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "2"))))


def pytest_addoption(parser, pluginmanager):
    # pyproject's addopts pass `--dist load --maxschedchunk 1`, xdist options: accept (and ignore) them
    # when xdist is switched off (`-p no:xdist`), or such a run stops at "unrecognized arguments".
    if not pluginmanager.has_plugin("xdist"):
        parser.addoption("--dist", default="no", help="ignored: pytest-xdist is disabled (-p no:xdist)")
        parser.addoption("--maxschedchunk", default=None, help="ignored: pytest-xdist is disabled (-p no:xdist)")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session", autouse=True)
def grading_sandbox() -> None:
    """Grading runs every kernel in bubblewrap (coursekit.autograde.sandbox): the test run installs
    Debian's package where it is missing, as CI's fresh machine needs."""
    from syspkg import ensure_debian

    ensure_debian(["bubblewrap"], "bwrap")


@pytest.fixture(scope="session", autouse=True)
def shared_instructor_runs(tmp_path_factory) -> None:
    """Every course copy of this test run grades against one set of instructor runs (each is one
    more execution of a notebook; coursekit.autograde.expected keys and locks them)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "expected"
    os.environ["COURSEKIT_EXPECTED_DIR"] = str(folder)


T = TypeVar("T")


def once_per_run(tmp_path_factory, name: str, compute: Callable[[Path], T]) -> T:
    """`compute(folder)`, run once per test run and shared by every xdist worker.

    A module fixture is otherwise rebuilt on each worker that takes one of the module's tests
    (minutes for a graded class). The first worker to ask computes under a file lock, in a folder
    all workers see; the others wait, then read the pickled result. Share only what the tests
    read: a test that writes to the shared course must not run beside one that reads it.
    """
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = folder / "result.pickle"
        if not result.exists():  # a failed compute leaves none: the next asker tries again
            value = compute(folder)
            part = folder / f".result.{os.getpid()}.part"
            part.write_bytes(pickle.dumps(value))
            os.replace(part, result)
        return pickle.loads(result.read_bytes())


def copy_course(dest: Path) -> Path:
    """A throwaway course: config, solutions and lessons, and an empty gradebook."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", dest / "nbgrader_config.py")
    shutil.copytree(ROOT / "solutions", dest / "solutions")
    shutil.copytree(ROOT / "lessons", dest / "lessons")
    return dest


AUTOGRADE_TEST = "test_autograde_solution_untouched_and_planted"


def _weight(item) -> float:
    """Rough minutes of one test (CI, stop 26, under load of the other worker: a Keras lesson's
    autograde 6-17 min, a PyTorch one's 3-4, the other slow tests up to 3)."""
    if item.originalname == AUTOGRADE_TEST:
        return 8.0 if item.callspec.params.get("framework") == "keras" else 3.5
    return 0.5 if item.get_closest_marker("slow") else 0.0


def pytest_collection_modifyitems(session, config, items):
    """Longest tests first. With pyproject's `--dist load --maxschedchunk 1`, xdist hands each idle
    worker the next test, one at a time, so the minutes-long autograde runs start first, spread
    over the workers as they come free, and the quick tests fill the gaps at the end (a greedy
    longest-first schedule). `worksteal` handed each worker a contiguous half of this list: every
    autograde run on one worker (CI ran past 60 minutes at 88%).

    This is for speed only: no test waits for another or needs one to have run. What several tests
    need and is slow to make is made once per run by whichever test asks first, under a lock
    (`once_per_run`, and the instructor runs of `shared_instructor_runs` that test_site also builds
    its pages from)."""
    items.sort(key=lambda item: -_weight(item))  # stable: file order among equals


LONG_TEST_S = 60.0


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report):
    """Each test that took over a minute, named with its time as it ends (the controller's stdout,
    between the progress dots): a CI run stopped at its time limit prints no --durations table,
    and this shows where its time went."""
    if report.when == "call" and report.duration > LONG_TEST_S:
        sys.stdout.write(f"\n[{report.duration / 60:.1f} min] {report.nodeid}\n")
        sys.stdout.flush()
