"""LMS import files (coursekit.lms): Canvas' and Moodle's CSV, one column per lesson, from the
per-exercise export; the roster's mistakes are one clear error each. The whole command on a real
gradebook: tests/test_feedback_export.py."""

from __future__ import annotations

import csv
import re

import pytest

from coursekit import lms

L1, L2 = "01-shape-alignment", "02-concat-failure-modes"


def _rows(*entries):
    """Per-exercise export rows: (student, lesson, notebook, notebook_score, notebook_max)."""
    return [{"student_id": s, "assignment": a, "notebook": nb, "exercise": "ex1-tests", "score": "0",
             "max_score": "1", "notebook_score": str(score), "notebook_max_score": str(top), "timestamp": ""}
            for s, a, nb, score, top in entries]


def _roster(tmp_path, text):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    return path


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_the_better_notebook_counts_when_a_student_handed_in_both():
    scores = lms.lesson_scores(_rows(("ann", L1, "keras", 6, 9), ("ann", L1, "pytorch", 7.5, 9),
                                     ("bo", L1, "pytorch", 3, 9), ("cy", L1, "keras", 4, 8), ("cy", L1, "pytorch", 4, 8)))
    assert scores["ann"][L1] == lms.LessonScore("pytorch", 7.5, 9, ("keras",))
    assert scores["bo"][L1] == lms.LessonScore("pytorch", 3, 9, ())
    assert scores["cy"][L1].notebook == "keras" and scores["cy"][L1].ignored == ("pytorch",)  # a tie: first by name


def test_canvas_file_has_canvas_columns_points_possible_and_empty_cells_for_nothing_graded(tmp_path):
    roster = lms.read_roster(_roster(tmp_path, "student_id,name,canvas_id,sis_user_id,sis_login_id,section\n"
                                               "ann,\"Lee, Ann\",101,S1,ann@u,A\nbo,Bo Ray,102,,,A\ncy,Cy Do,,S3,,B\n"), "canvas")
    scores = lms.lesson_scores(_rows(("ann", L1, "pytorch", 9, 9), ("ann", L2, "keras", 4.5, 8),
                                     ("bo", L1, "keras", 3, 9)))
    dest = tmp_path / "canvas.csv"
    assert lms.write_lms_csv(dest, "canvas", roster, scores, [L1, L2]) == 3
    assert _read(dest) == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", L1, L2],
        ["Points Possible", "", "", "", "", "9", "8"],
        ["Lee, Ann", "101", "S1", "ann@u", "A", "9", "4.5"],
        ["Bo Ray", "102", "", "", "A", "3", ""],
        ["Cy Do", "", "S3", "", "B", "", ""],
    ]
    lms.write_lms_csv(dest, "canvas", roster, scores, [L1, L2], percent=True)
    table = _read(dest)
    assert table[1][5:] == ["100", "100"] and table[2][5:] == ["100", "56.25"] and table[3][5:] == ["33.33", ""]


def test_moodle_file_is_keyed_by_the_roster_id_column(tmp_path):
    roster = lms.read_roster(_roster(tmp_path, "student_id,idnumber\nann,7001\nbo,7002\n"), "moodle")
    scores = lms.lesson_scores(_rows(("ann", L1, "pytorch", 9, 9), ("bo", L1, "pytorch", 0, 9)))
    dest = tmp_path / "moodle.csv"
    lms.write_lms_csv(dest, "moodle", roster, scores, [L1])
    assert _read(dest) == [["ID number", L1], ["7001", "9"], ["7002", "0"]]


@pytest.mark.parametrize("fmt,text,needle", [
    ("canvas", "name,canvas_id\nAnn,1\n", "needs a student_id column"),
    ("canvas", "student_id,name\nann,Ann\n", "needs one of the columns canvas_id, sis_user_id, sis_login_id"),
    ("canvas", "student_id,canvas_id\nann,1\nann,2\n", "appears on lines 2 and 3"),
    ("canvas", "student_id,canvas_id,sis_user_id\nann,,\n", "line 2 (ann): no Canvas id"),
    ("canvas", "student_id,canvas_id\n,5\n", "line 2: empty student_id"),
    ("moodle", "student_id,email\nann,\n", "line 2 (ann): empty email"),
    ("moodle", "student_id,canvas_id\nann,1\n", "needs one of the columns email, username, idnumber"),
])
def test_a_bad_roster_is_one_error_naming_the_fix(tmp_path, fmt, text, needle):
    with pytest.raises(lms.RosterError, match=re.escape(needle)):
        lms.read_roster(_roster(tmp_path, text), fmt)


def test_a_graded_student_missing_from_the_roster_is_an_error_not_a_dropped_grade(tmp_path):
    roster = lms.read_roster(_roster(tmp_path, "student_id,email\nann,a@u\n"), "moodle")
    scores = lms.lesson_scores(_rows(("ann", L1, "pytorch", 9, 9), ("zed", L1, "pytorch", 2, 9)))
    with pytest.raises(lms.RosterError, match="missing from the roster: zed"):
        lms.write_lms_csv(tmp_path / "m.csv", "moodle", roster, scores, [L1])
    assert not (tmp_path / "m.csv").exists()


def test_a_spreadsheet_roster_with_a_byte_order_mark_reads(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_bytes("\ufeffstudent_id,username\r\nann,alee\r\n".encode())
    assert lms.read_roster(path, "moodle") == [{"student_id": "ann", "username": "alee"}]


def test_a_notebook_nbgrader_scored_0_because_it_was_not_handed_in_is_left_out():
    """nbgrader gives a missing notebook 0; the grader's record of what it graded tells them apart."""
    rows = _rows(("ann", L1, "keras", 0, 9), ("ann", L1, "pytorch", 0, 9), ("bo", L1, "keras", 0, 9),
                 ("bo", L1, "pytorch", 5, 9))
    scores = lms.lesson_scores(rows, {("ann", L1, "pytorch"), ("bo", L1, "pytorch")})
    assert scores["ann"][L1] == lms.LessonScore("pytorch", 0, 9, ())  # not "keras" (first by name), no "both"
    assert scores["bo"][L1].ignored == ()
    assert lms.lesson_scores(rows)["ann"][L1].ignored == ("pytorch",)  # without the record: both count


def test_canvas_assignment_ids_head_existing_assignments(tmp_path):
    roster = lms.read_roster(_roster(tmp_path, "student_id,canvas_id\nann,101\n"), "canvas")
    scores = lms.lesson_scores(_rows(("ann", L1, "pytorch", 9, 9), ("ann", L2, "pytorch", 4, 8)))
    ids = lms.canvas_assignment_ids([f"{L1}=4321"], [L1, L2])
    dest = tmp_path / "canvas.csv"
    lms.write_lms_csv(dest, "canvas", roster, scores, [L1, L2], canvas_ids=ids)
    assert _read(dest)[0][5:] == [f"{L1} (4321)", L2]


@pytest.mark.parametrize("pair,needle", [("01-shape-alignment", "takes LESSON=ID"), ("01-shape-alignment=abc", "takes LESSON=ID"),
                                         ("09-nope=12", "not among the exported lessons")])
def test_a_bad_canvas_assignment_is_one_error(pair, needle):
    with pytest.raises(lms.RosterError, match=re.escape(needle)):
        lms.canvas_assignment_ids([pair], [L1, L2])
