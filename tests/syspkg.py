"""Debian packages that some tests need (Chromium, PostgreSQL), installed by the test run itself.

The README's test command is all CI runs, so a test that needs a system program installs it here:
with `apt-get` when the run is root (CI and the course machines are), once per machine, under a
file lock so that two xdist workers don't run apt at the same time. Where it cannot be installed
the test is skipped with the reason — except under CI (`CI` set), where a missing program fails.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

_LOCK = Path(tempfile.gettempdir()) / "coursekit-apt.lock"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must install it: the test command runs as root with apt-get)")
    pytest.skip(reason)


def ensure_debian(packages: list[str], program: str, timeout: float = 900) -> str:
    """The path of `program`, installing Debian `packages` first if it is missing.

    Skips (fails under CI) with a clear reason when the program is absent and apt-get is not
    usable (not root, no apt-get, or the install failed)."""
    found = Path(program) if os.path.isabs(program) else None
    if found is not None and found.exists():
        return str(found)
    if found is None and shutil.which(program):
        return shutil.which(program)
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        _unavailable(f"{program} is not installed and cannot be: apt-get needs root "
                     f"(install {' '.join(packages)} by hand)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open(_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one apt at a time across xdist workers
        if (found is not None and found.exists()) or (found is None and shutil.which(program)):
            return str(found) if found is not None else shutil.which(program)
        steps = [[apt, "update", "-qq"],
                 [apt, "install", "-y", "-qq", "--no-install-recommends", *packages]]
        for cmd in steps:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                _unavailable(f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {' | '.join(tail)}")
    path = str(found) if found is not None else shutil.which(program)
    if not path or not os.path.exists(path):
        _unavailable(f"installed {' '.join(packages)} but {program} is still missing")
    return path
