"""Honest correct answers in many styles (tests/honest/): the grader judges values, not idioms.

tests/test_pipeline.py grades every answer of the corpus in each lesson's autograde run (the first
answers beside the planted wrong ones, the others one submission per style) and requires full
marks; here the corpus itself is checked: broad, and using every idiom the old audit blocked.
"""

from __future__ import annotations

import pytest
from honest import corpus

CORPUS = corpus()


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
    "a class as a default argument": r"=(nn|layers)\.\w+[,)]",
    "a helper with __iter__": r"def __iter__",
}


@pytest.mark.parametrize("idiom", sorted(IDIOMS))
def test_the_corpus_uses_each_blocked_idiom_twice(idiom):
    import re

    codes = [code for by_nb in CORPUS.values() for by_id in by_nb.values() for codes in by_id.values()
             for code in codes]
    uses = sum(bool(re.search(IDIOMS[idiom], code, re.M)) for code in codes)
    assert uses >= 2, f"the honest corpus uses {idiom!r} in {uses} answer(s); add another answer in that style"
