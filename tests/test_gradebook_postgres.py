"""A shared gradebook on a real PostgreSQL server gives the same grades as the course's SQLite file.

The server is PostgreSQL 16 from the `pgserver` wheel (a dev dependency), started on a private data
directory and a Unix socket for this module and stopped afterwards: nothing is installed system-wide.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import warnings

import pytest
from conftest import copy_course
from nbtools import answer_ids, make_submission, solution_sources
from planted import WRONG
from test_pipeline import LESSONS

pytestmark = pytest.mark.slow
LESSON, NAME = LESSONS[0], "pytorch.ipynb"


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    yield server
    server.cleanup()


def database(server, name: str) -> str:
    server.psql(f"CREATE DATABASE {name};")
    return server.get_uri(name).replace("postgresql://", "postgresql+psycopg2://", 1)


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
        db_url = database(postgres, db_name) if db_name else None
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
