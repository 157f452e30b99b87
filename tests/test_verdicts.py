"""coursekit.autograde.verdicts and coursekit.observations: the rules that judge a test cell outside
the kernel, on hand-made observations (no kernel, no nbgrader)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from coursekit.autograde.verdicts import hidden_lines, judge, stopped_by, verdict_outputs
from coursekit.observations import compare, decode, encode


def obs(kind, value, **extra):
    return {"kind": kind, "value": encode(value), "what": extra.pop("what", "w"), "hint": "", **extra}


def record(kind, value, hidden=False, **tol):
    return {**obs(kind, value, **tol), "hidden": hidden}


def test_values_travel_as_plain_json_and_come_back():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    back = decode(json.loads(json.dumps(encode({"x": a, "t": (1, 2.5, None), "s": "hi", "n": float("nan")}))))
    assert np.array_equal(back["x"], a) and back["x"].dtype == np.float32
    assert back["t"] == [1, 2.5, None] and back["s"] == "hi" and np.isnan(back["n"])
    with pytest.raises(TypeError):
        encode(object())


def test_decode_refuses_what_is_not_data():
    bad = {"__array__": "|O", "shape": [1], "b64": ""}
    with pytest.raises(ValueError):
        decode(bad)
    with pytest.raises(ValueError):
        decode({"__array__": "<f4", "shape": [4], "b64": "AAAA"})  # 3 bytes for 4 floats


def test_a_list_and_a_tuple_are_the_same_answer_but_true_is_not_one():
    assert compare("equal", decode(encode([2, 8, 8, 8])), decode(encode((2, 8, 8, 8))))[0]
    assert not compare("equal", True, 1)[0]
    assert compare("close", np.ones(3), np.ones(3) + 1e-7)[0]
    ok, why = compare("close", np.ones((2, 3)), np.ones((3, 2)))
    assert not ok and "shape (2, 3), expected (3, 2)" in why


def test_judge_passes_only_every_check_observed_once_in_order():
    rec = [record("equal", (2, 8)), record("close", np.zeros(3), atol=1e-5, rtol=1e-5)]
    assert judge(rec, [obs("equal", [2, 8]), obs("close", np.zeros(3))]).passed
    # a wrong value, a missing check, a check of another kind, an extra observation: all fail
    assert not judge(rec, [obs("equal", [2, 9]), obs("close", np.zeros(3))]).passed
    assert not judge(rec, [obs("equal", [2, 8])]).passed
    assert not judge(rec, [obs("close", np.zeros(3)), obs("equal", [2, 8])]).passed
    assert not judge(rec, [obs("equal", [2, 8]), obs("close", np.zeros(3)), obs("true", True)]).passed
    # a record that asks nothing never passes
    assert not judge([], []).passed


def test_the_instructor_run_sets_the_tolerance_not_the_kernel():
    rec = [record("close", np.zeros(3), atol=1e-5, rtol=0.0)]
    forged = obs("close", np.full(3, 0.5), atol=1.0, rtol=1.0)
    assert not judge(rec, [forged]).passed


def test_a_failing_hidden_check_shows_no_value_and_the_kernels_error_text_never_shows():
    rec = [record("equal", 42, hidden=True, what="hidden case")]
    v = judge(rec, [obs("equal", 41)])
    assert not v.passed and "hidden case (a hidden test): wrong" in v.message and "41" not in v.message
    v = judge([record("equal", 1), record("equal", 42, hidden=True)], [obs("equal", 1)],
              stopped_by([{"output_type": "error", "ename": "ValueError", "evalue": "secret source here"}]))
    assert "ValueError" in v.message and "secret" not in v.message
    assert stopped_by([{"output_type": "error", "ename": "a b c <script>"}]) == "an error"
    out = verdict_outputs(v)
    assert out[0]["output_type"] == "error" and out[0]["ename"] == "CheckFailed"


def test_hidden_lines_are_those_between_the_markers():
    src = "a\n### BEGIN HIDDEN TESTS\nb\nc\n### END HIDDEN TESTS\nd"
    assert hidden_lines(src) == {3, 4}


def test_an_unattempted_exercise_is_named():
    v = judge([record("equal", 1)], [{"kind": "unattempted", "what": "concat_shape", "value": None}], "AssertionError")
    assert not v.passed and "concat_shape still raises NotImplementedError" in v.message
    v = judge([record("equal", 1)], [{"kind": "unattempted", "what": "<b>x</b>", "value": None}])
    assert "the function still raises" in v.message


def test_a_missing_raise_names_the_instructors_exception_and_what_was_raised_instead():
    rec = [record("raises", True, what="f(1)", hint="raise ValueError.", expects="ValueError", raised="ValueError")]
    assert judge(rec, [obs("raises", True, what="f(1)", expects="ValueError", raised="MyError")]).passed
    quiet = judge(rec, [obs("raises", False, expects="Anything", raised="")])
    assert quiet.message == "f(1) did not raise ValueError. Hint: raise ValueError."
    other = judge(rec, [obs("raises", False, raised="KeyError")])
    assert other.message == "f(1) did not raise ValueError (it raised KeyError). Hint: raise ValueError."
    # the kernel's text is only shown when it is a plain name
    forged = judge(rec, [obs("raises", False, raised="x\nAll checks passed")])
    assert forged.message == "f(1) did not raise ValueError. Hint: raise ValueError."
    hidden = judge([{**rec[0], "hidden": True}], [obs("raises", False, raised="KeyError")])
    assert hidden.message == "f(1) (a hidden test): wrong. Hint: raise ValueError."


def test_a_check_in_a_helper_called_from_the_hidden_block_is_hidden(monkeypatch):
    """The line a check reports is the test cell's top-level line that runs it, so a helper written
    above the hidden block and called from it makes hidden checks (their values never shown)."""
    import IPython.display

    from coursekit import grading
    from coursekit.grading import OBSERVATION_MIME

    seen = []
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.delenv(grading.VERDICTS_ENV_VAR, raising=False)
    monkeypatch.setattr(IPython.display, "publish_display_data", lambda data: seen.append(data[OBSERVATION_MIME]))
    cell = ("def helper(x):\n"
            "    grading.expect(x, 'twice')\n"
            "    return x\n"
            "helper(1)\n"
            "### BEGIN HIDDEN TESTS\n"
            "helper(2)\n"
            "grading.expect(3, 'direct')\n"
            "### END HIDDEN TESTS\n")
    exec(compile(cell, "<ipython-cell-1>", "exec"), {"grading": grading})
    assert [o["line"] for o in seen] == [4, 6, 7]
    assert [o["line"] in hidden_lines(cell) for o in seen] == [False, True, True]


def test_a_failing_verdict_names_its_checks_by_the_instructors_labels_only():
    """What the grader keeps for the instructor's report (coursekit.autograde.results): each failing
    check's label from the instructor's run, never the student's values or labels."""
    rec = [record("equal", 3, what="count_params(net)"), record("equal", 5, hidden=True, what="g(x)"),
           record("equal", 1, what="h()")]
    got = judge(rec, [obs("equal", 4, what="STUDENT LABEL 4"), obs("equal", 6), obs("equal", 1)])
    assert not got.passed and got.failed == ("count_params(net)", "g(x) (a hidden test)")
    assert judge(rec, [obs("equal", 3), obs("equal", 5), obs("equal", 1)]).failed == ()
    stopped = judge(rec, [obs("equal", 3)], stopped="ValueError")
    assert stopped.failed == ("g(x) (a hidden test)",)
    assert judge(rec, [obs("equal", 3), obs("equal", 5), obs("equal", 1), obs("equal", 9)]).failed == ("extra checks reported",)
    assert judge([], []).failed == ("no check in the instructor's run",)


def test_read_choices_accepts_any_spelling_and_names_what_is_missing_or_not_a_choice():
    from coursekit import grading

    keys, choices = ["x10", "both x100"], ("A", "B", "neither")
    assert grading.read_choices({"X10 ": " a", "both  x100": "NEITHER", "extra": 1}, keys, choices) == \
        {"x10": "A", "both x100": "neither"}
    with pytest.raises(AssertionError) as err:
        grading.read_choices({"x10": "C"}, keys, choices, "drowned_predictions")
    msg = str(err.value)
    assert "drowned_predictions" in msg and "'both x100'" in msg and "'x10': 'C'" in msg and "'neither'" in msg
    with pytest.raises(AssertionError, match="should be a dict.*received a list"):
        grading.read_choices(["A", "neither"], keys, choices)


def test_drowned_branch_and_the_settings_reject_what_they_cannot_read():
    from coursekit.experiments import drowned_branch, init_share_setting

    assert [drowned_branch(s) for s in ([0.05, 0.95], [0.95, 0.05], [0.5, 0.5])] == ["A", "B", "neither"]
    with pytest.raises(ValueError, match=r"two shares \[A, B\]; received \[0.2, 0.3, 0.5\]"):
        drowned_branch([0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="unknown setting 'x7'.*'x10'"):
        init_share_setting("x7")


def test_read_counts_takes_whole_numbers_in_any_form_and_nothing_else():
    from coursekit import grading

    keys = ["linear, below 1e-3", "exponential, below 1e-3"]
    got = grading.read_counts({"Linear,  below 1e-3": np.int64(1), "exponential, below 1e-3": 29.0}, keys)
    assert got == {"linear, below 1e-3": 1, "exponential, below 1e-3": 29}
    assert all(type(v) is int for v in got.values())
    with pytest.raises(AssertionError, match=r"not a whole number: 'linear, below 1e-3': 1.5, "
                                             r"'exponential, below 1e-3': True"):
        grading.read_counts({"linear, below 1e-3": 1.5, "exponential, below 1e-3": True}, keys, "sweep_predictions")
