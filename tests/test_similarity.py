"""`coursekit similarity LESSON` (coursekit.similarity): near-copies found through renamed names,
new comments and reordered functions; independent correct answers not flagged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, copy_course
from honest import corpus
from nbtools import make_submission, solution_sources

from coursekit.similarity import _answer_cells, compare_answers

LESSON = "04-fusion-strategies"
# lesson 04's ex1 solution with every name changed, a comment added and the two methods swapped
DISGUISED_EX1 = '''def make_weighted_sum(k):
    """An nn.Module that fuses a list of maps with registered, softmax-normalized weights."""
    class Mixer(nn.Module):
        def forward(self, feats):
            # mix them
            wts = torch.softmax(self.raw, dim=0)
            acc = wts[0] * feats[0]
            for j in range(1, len(feats)):
                acc = acc + wts[j] * feats[j]
            return acc

        def __init__(self):
            super().__init__()
            self.raw = nn.Parameter(torch.zeros(k))

    return Mixer()
'''


def test_independent_correct_answers_are_not_flagged():
    """Every exercise of every lesson, both frameworks: the solution and the honest corpus's answers
    (written independently, in many styles) stay under the default threshold, pair by pair."""
    worst = []
    for lesson, by_nb in corpus().items():
        for nb, by_id in by_nb.items():
            solved = solution_sources(ROOT / "solutions" / lesson / f"{nb}.ipynb")
            released = _answer_cells(ROOT / "lessons" / lesson / f"{nb}.ipynb")
            for gid, codes in by_id.items():
                answers = {"solution": solved[gid], **{f"honest-{i}": c for i, c in enumerate(codes)}}
                worst += [(p.similarity, lesson, nb, gid, p.a, p.b)
                          for p in compare_answers(answers, released[gid], threshold=0.01)]
    assert len(worst) >= 20, "too few comparable pairs to say anything"
    flagged = [w for w in worst if w[0] >= 0.7]
    assert not flagged, flagged


def test_a_disguised_copy_is_flagged_with_its_lines(tmp_path):
    course = copy_course(tmp_path / "course")
    release = course / "lessons" / LESSON / "pytorch.ipynb"
    solved = solution_sources(course / "solutions" / LESSON / "pytorch.ipynb")
    honest = corpus()[LESSON]["pytorch"]
    students = {"ann": solved, "copycat": {**solved, "ex1-answer": DISGUISED_EX1},
                "bo": {g: c[0] for g, c in honest.items()}, "cy": {g: c[-1] for g, c in honest.items()},
                "dee": {}}  # dee handed in the untouched notebook: stubs are boilerplate, never a match
    for student, answers in students.items():
        make_submission(release, answers, course / "submitted" / student / LESSON / "pytorch.ipynb")
    proc = subprocess.run([sys.executable, "-m", "coursekit.cli", "--root", str(course), "similarity", LESSON],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    listed = [ln.split() for ln in proc.stdout.splitlines()[1:]]
    assert listed, proc.stdout
    assert all({row[3], row[4]} == {"ann", "copycat"} for row in listed), proc.stdout
    ex1 = next(row for row in listed if row[2] == "ex1-answer")
    assert int(ex1[0].rstrip("%")) >= 80, proc.stdout
    assert "reports/" + LESSON + "/similarity.html" in proc.stdout.splitlines()[0]
    page = (course / "reports" / LESSON / "similarity.html").read_text()
    assert "ex1-answer: ann and copycat" in page and "<span class=m>" in page


@pytest.mark.parametrize("args,needle", [(("--threshold", "0"), "--threshold must be in (0, 1]"),
                                         (("--min-tokens", "0"), "--min-tokens must be at least 1")])
def test_bad_options_are_one_line(tmp_path, args, needle):
    course = copy_course(tmp_path / "course")
    (course / "submitted").mkdir()
    proc = subprocess.run([sys.executable, "-m", "coursekit.cli", "--root", str(course), "similarity", LESSON, *args],
                          capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr


def test_nobody_submitted_is_one_line(tmp_path):
    course = copy_course(tmp_path / "course")
    (course / "submitted").mkdir()
    proc = subprocess.run([sys.executable, "-m", "coursekit.cli", "--root", str(course), "similarity", LESSON],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "nobody has submitted" in proc.stderr, proc.stderr
    assert not Path(course / "reports").exists()


def test_scores_are_the_same_on_every_run():
    """copydetect hashes k-grams with Python's salted hash(): the score may not depend on the salt."""
    code = ("import sys; sys.path.insert(0, 'tests'); from nbtools import solution_sources; "
            "from test_similarity import DISGUISED_EX1, LESSON; from coursekit.similarity import compare_answers; "
            "s = solution_sources(f'solutions/{LESSON}/pytorch.ipynb')['ex1-answer']; "
            "print(compare_answers({'a': s, 'b': DISGUISED_EX1}, threshold=0.01)[0].similarity)")
    scores = {subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env={**__import__("os").environ, "PYTHONHASHSEED": str(seed)}).stdout.strip()
              for seed in (1, 2, 3)}
    assert len(scores) == 1 and float(scores.pop()) >= 0.9


def test_prediction_answers_are_values_and_never_compared():
    """A prediction exercise's right answer is one value: two students who both got it right write
    the same dict, so value answers are left out, however long; code that builds them is compared."""
    from coursekit.similarity import compare_answers, is_value_answer

    predictions = ('mirror_predictions = {0: "kept", 2: "lost", 3: "lost", 5: "lost", 6: "lost", 7: "lost",\n'
                   '                      8: "kept", 1: "kept", 4: "kept", 9: "lost"}  # my guesses\n'
                   'answer: int = 3\n')
    assert is_value_answer(predictions)
    assert compare_answers({"ann": predictions, "bo": predictions}, threshold=0.01, min_tokens=1) == []
    built = 'mirror_predictions = {d: "kept" if d in {0, 8} else "lost" for d in range(10)}\n'
    assert not is_value_answer(built) and not is_value_answer("def f():\n    return 1\n")
    assert not is_value_answer("x = f(1)\n") and not is_value_answer("") and not is_value_answer("x = (")
    assert [(p.a, p.b) for p in compare_answers({"ann": built, "bo": built}, threshold=0.5, min_tokens=1)] == [("ann", "bo")]
