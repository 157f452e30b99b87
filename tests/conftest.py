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
    # pyproject's addopts pass `--dist worksteal`, an xdist option: accept (and ignore) it when xdist
    # is switched off (`-p no:xdist`), or such a run stops at "unrecognized arguments: --dist".
    if not pluginmanager.has_plugin("xdist"):
        parser.addoption("--dist", default="no", help="ignored: pytest-xdist is disabled (-p no:xdist)")


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


@pytest.fixture(scope="session")
def run_shared(tmp_path_factory) -> Path:
    """A folder that every xdist worker of this test run sees, and no other run."""
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    shared.mkdir(exist_ok=True)
    return shared


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
AUTOGRADE_TEST = "test_autograde_solution_untouched_and_planted"


def _rank(item) -> int:
    if item.originalname == AUTOGRADE_TEST:
        return 0
    if item.originalname == SITE_TEST:  # after the autograde runs whose executed solutions it reuses
        return 3
    return 1 if item.get_closest_marker("slow") else 2


def _weight(item) -> float:
    """Rough minutes of one test, for sharing the long ones out (CI, stop 22, the honest corpus graded
    inside these runs: a Keras lesson's autograde 160-336 s, a PyTorch one's 47-200 s, the other slow
    tests 5-185 s)."""
    if item.originalname == AUTOGRADE_TEST:
        return 4.5 if item.callspec.params.get("framework") == "keras" else 2.0
    return 0.3 if _rank(item) == 1 else 0.0


def _first_shares(n: int, workers: int) -> list[int]:
    """How many tests each worker is handed first by xdist's worksteal scheduler (the pending
    tests divided among the idle workers in turn); later it moves tests from busy to idle ones."""
    sizes: list[int] = []
    for i in range(workers):
        sizes.append((n - sum(sizes)) // (workers - i))
    return sizes


def pytest_collection_modifyitems(session, config, items):
    """Longest tests first, so the minutes-long autograde runs start early, and the site test last,
    after the autograde runs whose executed solutions it reuses (test_site).

    Under xdist (`--dist worksteal`, pyproject's addopts) each worker is first handed a contiguous
    share of this list. A plain sort gave the first worker every autograde run and the last one
    the quick tests and then the site test, which started while most autograde runs were still
    to come and executed those notebooks again (357 s instead of ~80). So every share gets its
    part of the autograde runs (balanced by weight), then of the other slow tests, then quick
    ones; the site test ends the last share."""
    items.sort(key=_rank)  # stable: keeps file order within a rank
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2 or len(items) < 4 * workers:
        return
    sizes = _first_shares(len(items), workers)
    site = [it for it in items if it.originalname == SITE_TEST]
    sizes[-1] -= len(site)
    shares: list[list] = [[] for _ in range(workers)]
    load = [0.0] * workers
    heavy = sorted((it for it in items if _rank(it) in (0, 1)), key=lambda it: (_rank(it), -_weight(it)))
    for item in heavy:
        open_ = [i for i in range(workers) if len(shares[i]) < sizes[i]] or list(range(workers))
        i = min(open_, key=lambda k: (load[k], k))
        shares[i].append(item)
        load[i] += _weight(item)
    quick = [it for it in items if _rank(it) == 2]
    for i in range(workers):
        take = max(0, sizes[i] - len(shares[i])) if i < workers - 1 else len(quick)
        shares[i] += quick[:take]
        del quick[:take]
    items[:] = [it for share in shares for it in share] + site
