"""A shared gradebook on a real PostgreSQL server gives the same grades as the course's SQLite file.

The server is Debian's `postgresql` package (PostgreSQL 15), installed by the test run itself when
missing (`syspkg.ensure_debian`: apt-get as root). For this module a fresh cluster is made with
initdb in a private temporary directory and started with pg_ctl on loopback TCP only (127.0.0.1, a
free port, trust authentication, no Unix socket) as the `postgres` user (PostgreSQL refuses to run
as root); it is stopped and its directory removed afterwards, also when the test fails.
"""

from __future__ import annotations

import csv
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import copy_course
from nbtools import answer_ids, make_submission, solution_sources
from planted import WRONG
from syspkg import ensure_debian
from test_pipeline import LESSONS

pytestmark = pytest.mark.slow
LESSON, NAME = LESSONS[0], "pytorch.ipynb"
POSTGRES = "/usr/lib/postgresql/15/bin/postgres"  # `dpkg -L postgresql-15` (Debian 12)
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """A throwaway PostgreSQL cluster: initdb'd into `base`/data, listening on HOST:port only."""

    def __init__(self, bindir: Path, base: Path, as_user: list[str]):
        self.bindir, self.base, self.as_user = bindir, base, as_user
        self.data, self.log, self.port = base / "data", base / "server.log", 0
        # C locale and no PG* variables from the caller's shell: the same cluster on every machine
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LC_", "LANG"))}
        self.env["LC_ALL"] = "C"

    def _run(self, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, str(self.bindir / tool), *args], cwd=self.base,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return "(no server log)"

    def init(self) -> None:
        proc = self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                         "-E", "UTF8", "--no-locale", "--no-sync")
        assert proc.returncode == 0, f"initdb failed: {proc.stderr[-2000:]}"

    def start(self) -> None:
        # A port found free can be taken before the server binds it: try a few.
        for _ in range(5):
            self.port = free_port()
            with open(self.data / "postgresql.conf", "a") as conf:  # later lines win
                conf.write(f"listen_addresses = '{HOST}'\nport = {self.port}\n"
                           "unix_socket_directories = ''\nfsync = off\n")
            proc = self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log),
                             "-w", "-t", "60")
            if proc.returncode == 0:
                return
            self.stop()
        pytest.fail(f"pg_ctl start failed: {proc.stdout[-1000:]}{proc.stderr[-1000:]}\n{self._log_tail()}")

    def stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        proc = self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "30")
        if proc.returncode != 0:
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30")

    def url(self, name: str) -> str:
        return f"postgresql+psycopg2://postgres@{HOST}:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(host=HOST, port=self.port, user="postgres", dbname="postgres",
                                connect_timeout=10)
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)


@pytest.fixture(scope="module")
def postgres():
    bindir = Path(ensure_debian(["postgresql"], POSTGRES)).parent
    # Not under pytest's tmp_path: that is private to root (0700), and the server runs as `postgres`.
    base = Path(tempfile.mkdtemp(prefix="coursekit-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")  # created by the Debian package
        os.chown(base, user.pw_uid, user.pw_gid)
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"  # util-linux
        as_user = [runuser, "-u", "postgres", "--"]
    server = Server(bindir, base, as_user)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def run(course, *args, db_url=None):
    env = dict(os.environ)
    env.pop("COURSEKIT_DB_URL", None)
    if db_url:
        env["COURSEKIT_DB_URL"] = db_url
    return subprocess.run([sys.executable, "-m", "coursekit.cli", "--root", str(course), *args],
                          capture_output=True, text=True, timeout=900, env=env)


def class_of_three(course):
    release = course / "lessons" / LESSON / NAME
    solved = solution_sources(course / "solutions" / LESSON / NAME)
    wrong = answer_ids(release)[1]
    for student, answers in {"ann": solved, "bo": {}, "cy": {**solved, wrong: WRONG[LESSON]["pytorch"][wrong]}}.items():
        make_submission(release, answers, course / "submitted" / student / LESSON / NAME)


def test_postgres_gradebook_matches_sqlite_serial_and_parallel(postgres, tmp_path):
    results, exports = {}, {}
    for mode, db_name, jobs in (("sqlite", None, "1"), ("pg-serial", "serial", "1"), ("pg-parallel", "parallel", "2")):
        course = copy_course(tmp_path / mode)
        class_of_three(course)
        db_url = postgres.create_database(db_name) if db_name else None
        proc = run(course, "grade", LESSON, "--framework", "torch", "--json", "--jobs", jobs, db_url=db_url)
        assert proc.returncode == 0, f"{mode}: {proc.stderr[-2000:]}"
        results[mode] = json.loads(proc.stdout)
        if db_url:
            assert not (course / "gradebook.db").exists(), f"{mode} wrote a SQLite gradebook"
        out = tmp_path / f"{mode}.csv"
        proc = run(course, "export", "--to", str(out), db_url=db_url)
        assert proc.returncode == 0, f"{mode}: {proc.stderr[-2000:]}"
        with open(out, newline="") as fh:
            exports[mode] = sorted((r["student_id"], r["exercise"], r["score"]) for r in csv.DictReader(fh))
        if mode == "pg-parallel":
            again = run(course, "grade", LESSON, "--framework", "torch", "--json", "--jobs", jobs, db_url=db_url)
            assert again.returncode == 0 and "3 already graded" in again.stderr, again.stderr[-2000:]
    scores = {r["student"]: r["score"] for r in results["sqlite"]}
    assert scores["ann"] > scores["cy"] > scores["bo"] == 0
    assert results["pg-serial"] == results["sqlite"]
    assert results["pg-parallel"] == results["sqlite"]
    assert exports["pg-serial"] == exports["sqlite"] == exports["pg-parallel"]
    assert len(exports["sqlite"]) == 3 * len(answer_ids(course / "lessons" / LESSON / NAME))


def test_unreachable_gradebook_is_one_clear_error(tmp_path):
    course = copy_course(tmp_path / "course")
    proc = run(course, "export", db_url="postgresql+psycopg2://nobody@/nodb?host=/nonexistent")
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("coursekit: error: cannot reach the gradebook"), lines
