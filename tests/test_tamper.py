"""Adversarial submissions: student code that tries to earn points it does not deserve.

Every submission here answers lesson 01 (PyTorch) the same honest way — exercises 1 and 2
right, 3 and 4 wrong (5 of 9 points) — and then tampers from inside its kernel: it patches the
grading helpers, the reference implementations, numpy, builtins or IPython; hides that through
aliases, `exec`, containers or helper functions; forges the checks' observations, pass messages or
the absence of errors; or edits, deletes, reorders and relabels the cells nbgrader uses. They are
graded together with an honest partial submission and a full solution, in one
`coursekit grade --jobs 2` run, with the static audit off (it is advice now): the verdicts are
decided outside the kernel (coursekit.autograde.verdicts), so no attack earns a point more than
its honest answers, in any exercise; an attack that breaks its own test cells loses their points.

The attacks are real: the same submissions graded with the kernel deciding its own test cells
(`BoundedExecute.host_verdicts = False`, as before the redesign) earn points they should not
(`test_attacks_work_when_the_kernel_decides`). Attacks from the kernel on the rest of the machine
(other students, the course files, secrets, the network) are in tests/test_sandbox.py; submissions
that misbehave without cheating (endless loops, os._exit, a segfault, memory bombs, huge output,
corrupt JSON, a wrong file name) in tests/test_bounds.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from conftest import copy_course
from nbtools import graded_cells, make_submission, solution_sources
from test_pipeline import coursekit

pytestmark = pytest.mark.slow

LESSON, NAME = "01-shape-alignment", "pytorch.ipynb"

WRONG = {
    # pooling taken to check the layout as a conv does: one prediction of seven wrong
    "ex3-answer": "layout_predictions = {'pool then concat': 'ok', 'concat unaligned': 'error',\n"
                  "    'conv, wrong layout': 'error', 'pool, wrong layout': 'error', '1x1 from 64 channels': 'error',\n"
                  "    'concat on a spatial axis': 'silent', 'upsample, wrong layout': 'silent'}\n",
    # average- instead of max-pooling: the right shape, wrong values (only check_close notices)
    "ex4-answer": "def fuse_two_layers(layer1_output, layer2_output):\n"
                  "    return torch.cat([F.avg_pool2d(layer1_output, 2), layer2_output], dim=1)\n",
}
HONEST = {"ex1-tests": 2.0, "ex2-tests": 3.0, "ex3-tests": 0.0, "ex4-tests": 0.0}
NOOP = "lambda *a, **k: None"

# Code a student adds in a new cell right after the set-up cell. Each one raises the score of the
# honest answers above when nothing stops it (checked below), except those marked as stopped by
# the grading helpers themselves.
ATTACKS = {
    "patch-helpers": f"from coursekit import grading\n"
                     f"grading.check_close = grading.check_equal = grading.check_true = grading.check_shape = {NOOP}",
    "patch-helpers-alias": f"import coursekit.grading as g\ng.check_close = {NOOP}",
    "patch-numpy": "np.allclose = lambda *a, **k: True",
    "patch-reference": "ck.align_and_concat = lambda maps, method='maxpool', target=0: fuse_two_layers(*maps)",
    "rebind-reference-module": "from coursekit import torch as _real\n"
                               "class FakeCk:\n"
                               "    align_spatial = staticmethod(_real.align_spatial)\n"
                               "    align_and_concat = staticmethod(lambda maps, method='maxpool', target=0: fuse_two_layers(*maps))\n"
                               "ck = FakeCk()",
    # wraps every later cell in try/except: no test can fail
    "swallow-errors": "import ast\n"
                      "class Swallow(ast.NodeTransformer):\n"
                      "    def visit_Module(self, node):\n"
                      "        handler = ast.ExceptHandler(type=None, name=None, body=[ast.Pass()])\n"
                      "        node.body = [ast.Try(body=node.body, handlers=[handler], orelse=[], finalbody=[])]\n"
                      "        return ast.fix_missing_locations(node)\n"
                      "get_ipython().ast_transformers.append(Swallow())",
    "rewrite-later-cells": "get_ipython().input_transformers_post.append(\n"
                           "    lambda lines: ['pass\\n'] if any('grading' in ln for ln in lines) else lines)",
    "ipython-magic": "%config InteractiveShell.ast_node_interactivity = 'none'\n"
                     "import coursekit.grading\n"
                     "get_ipython().user_ns['np'].allclose = lambda *a, **k: True",
    "sys-modules": f"import sys\nsys.modules['coursekit.grading'].check_close = {NOOP}",
    "via-torch-sys": f"torch.sys.modules['coursekit.grading'].check_close = {NOOP}",
    "exec-string": f"exec('import coursekit.grading as g; g.check_close = {NOOP}')",
    "setattr-import": f"setattr(__import__('coursekit.grading', fromlist=['x']), 'check_close', {NOOP})",
    "alias-variable": "m = np\nm.allclose = lambda *a, **k: True",
    "helper-function": "def poke(mod):\n    mod.allclose = lambda *a, **k: True\npoke(np)",
    "container": "[np][0].allclose = lambda *a, **k: True",
    "globals-dict": "globals()['ck'] = type('C', (), {'align_and_concat': staticmethod("
                    "lambda maps, method='maxpool', target=0: fuse_two_layers(*maps)), "
                    "'align_spatial': staticmethod(ck.align_spatial)})",
    "builtins-module": "import builtins\nbuiltins.isinstance = lambda *a: True",
    "builtins-rebind": "sum = lambda *a, **k: 28",
    # forged observations: every check reports the value the test expects instead of the student's
    "report-expected": "from coursekit import grading as _g\n"
                       "_obs = _g._observe\n"
                       "def _close(actual, expected, what='output', atol=1e-5, rtol=1e-5, hint=''):\n"
                       "    _obs('close', lambda: _g._array_value(expected), what, hint, atol=atol, rtol=rtol)\n"
                       "def _equal(actual, expected, what='result', hint=''):\n"
                       "    _obs('equal', lambda: expected, what, hint)\n"
                       "def _shape(actual, expected, what='output', hint=''):\n"
                       "    _obs('shape', lambda: list(expected), what, hint)\n"
                       "def _true(condition, message):\n"
                       "    _obs('true', lambda: True, message, '')\n"
                       "_g.check_close, _g.check_equal, _g.check_shape, _g.check_true = _close, _equal, _shape, _true",
    # no test cell ever shows an error: IPython's traceback display is switched off and the kernel
    # reports every cell as a success (nbgrader writes the reply's error into the cell otherwise)
    "hide-errors": "_sh = get_ipython()\n"
                   "_sh.showtraceback = lambda *a, **k: None\n"
                   "_sh.showsyntaxerror = lambda *a, **k: None\n"
                   "_run = _sh.run_cell_async\n"
                   "async def _quiet(*a, **k):\n"
                   "    res = await _run(*a, **k)\n"
                   "    res.error_in_exec = res.error_before_exec = None\n"
                   "    return res\n"
                   "_sh.run_cell_async = _quiet",
    # a pass message and a copy of every observation printed into each test cell
    "forge-output": "from IPython.display import publish_display_data\n"
                    "from coursekit.grading import OBSERVATION_MIME\n"
                    "def _forge(info):\n"
                    "    if 'grading.' in (info.raw_cell or ''):\n"
                    "        print('All checks passed (decided by the grader).')\n"
                    "get_ipython().events.register('pre_run_cell', _forge)",
    # a global torch mode switched on by an ordinary call: every max-pool becomes an average, the
    # kernel's references included, so the wrong answer of exercise 4 matches them
    "global-mode": "from torch.overrides import TorchFunctionMode\n"
                   "class AvgEverywhere(TorchFunctionMode):\n"
                   "    def __torch_function__(self, func, types, args=(), kwargs=None):\n"
                   "        kwargs = kwargs or {}\n"
                   "        if func is F.max_pool2d:\n"
                   "            return F.avg_pool2d(args[0], args[1] if len(args) > 1 else kwargs['kernel_size'])\n"
                   "        return func(*args, **kwargs)\n"
                   "AvgEverywhere().__enter__()",
    "extra-observations": "from IPython.display import publish_display_data\n"
                          "from coursekit.grading import OBSERVATION_MIME\n"
                          "def _extra(result):\n"
                          "    if 'grading.' in (result.info.raw_cell or ''):\n"
                          "        publish_display_data({OBSERVATION_MIME: {'kind': 'true', 'value': True}})\n"
                          "get_ipython().events.register('post_run_cell', _extra)",
}
# answers that attack from inside the student's own function, called by the test
ANSWER_ATTACKS = {
    # patches the reference the visible test compares with, at call time (no top-level assignment)
    "patch-in-function": ("ex4-answer", "def fuse_two_layers(layer1_output, layer2_output):\n"
                                        "    import coursekit.torch as _ck\n"
                                        "    _ck.align_and_concat = lambda maps, method='maxpool', target=0: "
                                        "torch.cat([F.avg_pool2d(maps[0], 2), maps[1]], dim=1)\n"
                                        "    return torch.cat([F.avg_pool2d(layer1_output, 2), layer2_output], dim=1)\n"),
}
# stopped by coursekit.grading's own comparison even when the kernel decides: look-alike values
SPOOFS = {
    "spoof-module": ("ex1-answer", "class Shape(tuple):\n    __module__ = 'builtins'\n"
                                   "    def __eq__(self, other):\n        return True\n"
                                   "    def __ne__(self, other):\n        return False\n"
                                   "def concat_shape(shapes, axis):\n    return Shape()\n"),
    "spoof-equal": ("ex1-answer", "class Anything(tuple):\n    def __eq__(self, other):\n        return True\n"
                                  "    def __ne__(self, other):\n        return False\n"
                                  "def concat_shape(shapes, axis):\n    return Anything()\n"),
    "spoof-tensor": ("ex4-answer", "class FakeMap(torch.Tensor):\n    pass\n"
                                   "def fuse_two_layers(layer1_output, layer2_output):\n"
                                   "    out = torch.cat([F.avg_pool2d(layer1_output, 2), layer2_output], dim=1)\n"
                                   "    return out.as_subclass(FakeMap)\n"),
}
NOT_EFFECTIVE_ALONE = {"builtins-module", "builtins-rebind",  # tried, but they cannot reach these tests
                       "extra-observations", "forge-output"}  # aimed at the grader's verdicts only


# an isinstance that always says yes breaks the kernel's own messaging: its cells never reply, the
# cell limit stops the notebook, and its test cells say so instead of holding a verdict
WEDGES_ITS_KERNEL = {"builtins-module"}


# attacks that leave their own test cells working: they score exactly the honest answers' points
HARMLESS_TO_ITSELF = {"patch-in-function", "patch-numpy", "patch-reference", "rebind-reference-module", "alias-variable",
                      "helper-function", "container", "globals-dict",
                      "report-expected", "hide-errors", "forge-output", "ipython-magic", "swallow-errors"}


def _expected(student: str) -> dict[str, float]:
    """HONEST, less the exercise a spoof replaced with its look-alike."""
    if student in SPOOFS:
        return {**HONEST, SPOOFS[student][0].replace("-answer", "-tests"): 0.0}
    return HONEST


def _cells(nb) -> dict[str, int]:
    return {c.metadata.get("nbgrader", {}).get("grade_id"): i for i, c in enumerate(nb.cells)
            if c.metadata.get("nbgrader", {}).get("grade_id")}


def _honest(course: Path) -> dict[str, str]:
    solved = solution_sources(course / "solutions" / LESSON / NAME)
    return {**solved, **WRONG}


def _write(course: Path, student: str, nb) -> None:
    dest = course / "submitted" / student / LESSON / NAME
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)


def _submission(course: Path, answers: dict[str, str]):
    release = course / "lessons" / LESSON / NAME
    tmp = course / ".tmp-submission.ipynb"
    make_submission(release, answers, tmp)
    nb = nbformat.read(tmp, as_version=4)
    tmp.unlink()
    return nb


def _structural(course: Path) -> dict[str, object]:
    """Submissions that change the notebook's cells and metadata instead of running code."""
    honest = _honest(course)
    out = {}

    nb = _submission(course, honest)  # a test cell edited to pass
    nb.cells[_cells(nb)["ex4-tests"]].source = "pass"
    out["edited-test"] = nb

    # test cells deleted (and the answer of one of them); exercise 3 answered right this time
    solved = solution_sources(course / "solutions" / LESSON / NAME)
    nb = _submission(course, {**honest, "ex3-answer": solved["ex3-answer"]})
    ids = _cells(nb)
    for gid in sorted(("ex3-tests", "ex4-tests", "ex4-answer"), key=ids.get, reverse=True):
        del nb.cells[ids[gid]]
    out["deleted-cells"] = nb

    nb = _submission(course, honest)  # every test cell moved to the top, before the set-up
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    nb.cells = tests + [c for c in nb.cells if c not in tests]
    out["reordered"] = nb

    nb = _submission(course, honest)  # metadata: points, ids, checksums, cell roles, kernel
    ids = _cells(nb)
    nb.cells[ids["ex4-tests"]].metadata.nbgrader["points"] = 100
    nb.cells[ids["ex3-tests"]].metadata.nbgrader["checksum"] = "0" * 32
    nb.cells[ids["ex3-tests"]].source = "pass"
    nb.cells[ids["ex2-tests"]].metadata.nbgrader["grade_id"] = "ex2-tests-renamed"
    del nb.cells[ids["ex1-tests"]].metadata["nbgrader"]
    nb.cells[ids["ex3-answer"]].metadata.nbgrader.update(grade=True, points=50)
    del nb.cells[ids["ex4-answer"]].metadata.nbgrader["grade_id"]
    nb.metadata["kernelspec"] = {"name": "bash", "display_name": "Bash", "language": "bash"}
    out["metadata"] = nb

    nb = _submission(course, honest)  # a copy of a test cell, emptied, placed first under the same id
    fake = nbformat.from_dict(json.loads(json.dumps(nb.cells[_cells(nb)["ex4-tests"]])))
    fake.source = "pass"
    fake.id = "student-copy"
    nb.cells.insert(0, fake)
    out["duplicate-id"] = nb
    return out


def _short_cell_limit(course: Path) -> None:
    """Lesson 01's cells take seconds: a kernel that stops answering waits out 45 s, not 120."""
    config = course / "nbgrader_config.py"
    config.write_text(config.read_text() + "\nc.Execute.timeout = 45\n")


def _grade(course: Path) -> dict[str, dict]:
    proc = coursekit("--root", str(course), "grade", LESSON, "--framework", "torch", "--json", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {r["student"]: r for r in json.loads(proc.stdout)}


def _scores(row) -> dict[str, float]:
    return {gid: v[0] for gid, v in row["grades"].items() if v[1]}


def _add_attacks(course: Path, names) -> None:
    honest = _honest(course)
    for name in names:
        nb = _submission(course, honest)
        nb.cells.insert(2, nbformat.v4.new_code_cell(ATTACKS[name]))  # right after the set-up cell
        _write(course, name, nb)


def test_tampering_earns_nothing_and_costs_nobody_anything(tmp_path):
    """All adversarial submissions, graded in one run beside a good and an honest one."""
    course = copy_course(tmp_path / "course")
    _short_cell_limit(course)
    solved = solution_sources(course / "solutions" / LESSON / NAME)
    _write(course, "good", _submission(course, solved))
    _write(course, "honest", _submission(course, _honest(course)))
    _add_attacks(course, ATTACKS)
    for name, (gid, code) in {**SPOOFS, **ANSWER_ATTACKS}.items():
        _write(course, name, _submission(course, {**_honest(course), gid: code}))
    structural = _structural(course)
    for name, nb in structural.items():
        _write(course, name, nb)
    rows = _grade(course)

    points = graded_cells(course / "lessons" / LESSON / NAME)
    assert _scores(rows["good"]) == points, "a good submission beside the attacks lost points"
    assert _scores(rows["honest"]) == HONEST

    wrong = []
    for student in [*ATTACKS, *SPOOFS, *ANSWER_ATTACKS, *structural]:
        expected = _expected(student)
        if student == "deleted-cells":  # its exercise 3 is right: the restored test must give the points
            expected = {**expected, "ex3-tests": 2.0}
        if student == "reordered":  # tests ran before the answers existed: the student's own loss
            expected = {gid: 0.0 for gid in HONEST}
        got = _scores(rows[student])
        # never a point above the honest answers; an attack that breaks its own test cells loses them
        if any(got[g] > expected[g] for g in expected) or rows[student]["max_score"] != 9:
            wrong.append(f"{student}: {got} of {rows[student]['max_score']}, expected at most {expected}")
        elif student in HARMLESS_TO_ITSELF and got != expected:
            wrong.append(f"{student}: {got}, expected exactly {expected}")
    assert not wrong, "\n".join(wrong)

    # every test cell holds the grader's verdict and nothing the kernel printed
    for student in ATTACKS:
        nb = nbformat.read(course / "autograded" / student / LESSON / NAME, as_version=4)
        for c in nb.cells:
            if c.metadata.get("nbgrader", {}).get("grade"):
                text = json.dumps(c.get("outputs", []))
                if student in WEDGES_ITS_KERNEL:  # the kernel stops answering: the student's own loss
                    assert "LimitReached" in text, f"{student}: {text[:300]}"
                else:
                    assert "decided by the grader" in text or "CheckFailed" in text, f"{student}: {text[:300]}"
                assert not (c.outputs and c.outputs[0].get("output_type") == "stream"
                            and "All checks passed (decided by the grader)." in c.outputs[0].get("text", "")), student

    # nbgrader (with coursekit.autograde.restore) put the instructor's tests back where they were edited or deleted
    source = nbformat.read(course / "solutions" / LESSON / NAME, as_version=4)
    want = {c.metadata.nbgrader["grade_id"]: c.source for c in source.cells
            if c.metadata.get("nbgrader", {}).get("grade")}
    for student in ("edited-test", "deleted-cells", "metadata"):
        nb = nbformat.read(course / "autograded" / student / LESSON / NAME, as_version=4)
        got = {c.metadata.nbgrader["grade_id"]: c.source for c in nb.cells
               if c.metadata.get("nbgrader", {}).get("grade")}
        for gid, src in want.items():
            assert gid in got, f"{student}: {gid} was not restored"
            last = [ln for ln in src.strip().splitlines() if "HIDDEN TESTS" not in ln][-1]
            assert last in got[gid], f"{student}: {gid} does not hold the instructor's test"


def test_attacks_work_when_the_kernel_decides(tmp_path):
    """Proof that the suite's attacks are real: when the kernel's own checks decide (the design
    before verdicts moved out of the kernel), each earns points it should not; the look-alike
    values are refused by the kernel's checks even then."""
    course = copy_course(tmp_path / "course")
    _short_cell_limit(course)
    (course / "nbgrader_config.py").write_text(
        (course / "nbgrader_config.py").read_text() + "\nc.BoundedExecute.host_verdicts = False\n")
    _write(course, "honest", _submission(course, _honest(course)))
    _add_attacks(course, [n for n in ATTACKS if n not in NOT_EFFECTIVE_ALONE])
    for name, (gid, code) in {**SPOOFS, **ANSWER_ATTACKS}.items():
        _write(course, name, _submission(course, {**_honest(course), gid: code}))
    rows = _grade(course)
    assert _scores(rows["honest"]) == HONEST
    for name in [*ATTACKS, *ANSWER_ATTACKS]:
        if name in NOT_EFFECTIVE_ALONE:
            continue
        got = sum(_scores(rows[name]).values())
        assert got > sum(HONEST.values()), f"{name} earns nothing even unchecked ({got}): not a real attack"
    for name in SPOOFS:
        assert _scores(rows[name]) == _expected(name), f"{name}: {_scores(rows[name])}"
