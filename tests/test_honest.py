"""Honest correct answers in many styles score full marks (tests/honest/): the grader judges
values, not idioms. Each lesson's corpus is graded in one `coursekit grade --jobs 2` run: submission
`style-k` answers every exercise of both notebooks with its k-th honest answer (or the last one an
exercise has), so every answer of the corpus is graded once.
"""

from __future__ import annotations

import json

import pytest
from conftest import copy_course
from honest import corpus
from nbtools import answer_ids, graded_cells, make_submission, solution_sources
from test_pipeline import coursekit

pytestmark = pytest.mark.slow

CORPUS = corpus()
FRAMEWORKS = {"pytorch": "torch", "keras": "keras"}


def test_the_corpus_is_broad():
    """At least 60 answers over at least 20 exercises of several lessons, both frameworks."""
    answers = [(lesson, nb, gid) for lesson, by_nb in CORPUS.items() for nb, by_id in by_nb.items()
               for gid, codes in by_id.items() for _ in codes]
    exercises = {(lesson, nb, gid) for lesson, nb, gid in answers}
    assert {nb for _, nb, _ in answers} == {"pytorch", "keras"}
    assert len(answers) >= 60 and len(exercises) >= 20, (len(answers), len(exercises))


# The styles an outside tester found blocked by the old deny-list audit (issue 14): the corpus uses
# each in at least two answers, so no rule can be tuned to let exactly one example through.
IDIOMS = {
    "warnings filter": r"warnings\.filterwarnings",
    "%timeit": r"^%timeit",
    "%matplotlib inline": r"^%matplotlib inline",
    "help with ?": r"^[\w.]+\?$",
    "getattr with an f-string": r"getattr\([\w.]+, f[\"']",
    "setattr with an f-string": r"setattr\(self, f[\"']",
    "forward(self, input)": r"def forward\(self, input\)",
    "__class__.__name__": r"__class__\.__name__",
    "a docstring naming a dunder": r"\.__init__'s",
    "import os": r"^import os$",
    "a star import": r"^from [\w.]+ import \*$",
    "a class as a default argument": r"=nn\.Conv2d\)",
    "a helper with __iter__": r"def __iter__",
}


@pytest.mark.parametrize("idiom", sorted(IDIOMS))
def test_the_corpus_uses_each_blocked_idiom_twice(idiom):
    import re

    codes = [code for by_nb in CORPUS.values() for by_id in by_nb.values() for codes in by_id.values()
             for code in codes]
    uses = sum(bool(re.search(IDIOMS[idiom], code, re.M)) for code in codes)
    assert uses >= 2, f"the honest corpus uses {idiom!r} in {uses} answer(s); add another answer in that style"


@pytest.mark.parametrize("lesson", sorted(CORPUS))
def test_honest_answers_score_full_marks(lesson, tmp_path):
    course = copy_course(tmp_path / "course")
    styles = max(len(codes) for by_id in CORPUS[lesson].values() for codes in by_id.values())
    points = {}
    for notebook, by_id in CORPUS[lesson].items():
        release = course / "lessons" / lesson / f"{notebook}.ipynb"
        solved = solution_sources(course / "solutions" / lesson / f"{notebook}.ipynb")
        assert set(by_id) <= set(answer_ids(release)), f"{lesson}/{notebook}: unknown answer ids {set(by_id)}"
        points[notebook] = sum(graded_cells(release).values())
        for k in range(styles):
            answers = {**solved, **{gid: codes[min(k, len(codes) - 1)] for gid, codes in by_id.items()}}
            make_submission(release, answers, course / "submitted" / f"style-{k}" / lesson / f"{notebook}.ipynb")
    proc = coursekit("--root", str(course), "grade", lesson, "--json", "--jobs", "2", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout)
    lost = [f"{r['student']}/{r['notebook']}: {r['score']} of {r['max_score']}: "
            + ", ".join(f"{g}={s[0]:g}/{s[1]:g}" for g, s in r["grades"].items() if s[0] < s[1])
            for r in rows if r["score"] != points[r["notebook"]]]
    assert not lost, "honest answers lost points:\n" + "\n".join(lost)
    assert len(rows) == styles * len(CORPUS[lesson])
