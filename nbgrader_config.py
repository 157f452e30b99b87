"""nbgrader configuration for the feature-fusion course.

Instructor notebooks (with solutions and hidden tests) live in `solutions/`, which nbgrader calls
its *source* directory; the student notebooks that `nbgrader generate_assignment` (or
`coursekit build`) makes from them live in `lessons/`, nbgrader's *release* directory.
One folder per lesson, one notebook per framework: `solutions/01-shape-alignment/pytorch.ipynb`.
"""

import os

c = get_config()  # noqa: F821  (injected by nbgrader/traitlets)

_here = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = _here
c.CourseDirectory.course_id = "feature-fusion"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "lessons"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
# A class shared by several graders can keep its gradebook in PostgreSQL: set COURSEKIT_DB_URL
# (e.g. postgresql+psycopg2://user@host/course) for nbgrader and coursekit alike.
c.CourseDirectory.db_url = os.environ.get("COURSEKIT_DB_URL") or "sqlite:///" + os.path.join(_here, "gradebook.db")

# A torch-only or keras-only class: set this to "pytorch" or "keras" (a glob over notebook
# names) before generating and grading, or pass --framework to the coursekit commands.
c.CourseDirectory.notebook_id = os.environ.get("COURSEKIT_NOTEBOOK_ID", "*")

# Grading runs lessons at their small size (coursekit.runsize reads NBGRADER_EXECUTION);
# a cell that needs more than this is a bug in the lesson or an endless loop in a submission.
c.ExecutePreprocessor.timeout = 120
c.Execute.timeout = 120

# Before grading, put back what a student deleted or edited: nbgrader restores the source of
# locked cells (the tests), coursekit.autograde.restore.RestoreCells also re-adds deleted answer and test
# cells in the instructor's order (nbgrader's own add_missing_cells crashes when both are gone).
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "coursekit.autograde.restore.CleanMetadata",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "coursekit.autograde.restore.RestoreCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Autograde with bounds (coursekit.autograde.bounds): a submission that loops past the cell limit and ignores
# the interrupt, runs past the notebook limit, uses too much memory, kills its kernel or prints
# megabytes keeps the points it earned before, gets the reason in its feedback, and grading goes
# on. It runs every kernel in the OS sandbox and decides test cells outside the kernel (below).
# nbgrader's own list, with Execute swapped for the bounded one.
c.Autograde.autograde_preprocessors = [
    "coursekit.autograde.bounds.BoundedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.BoundedExecute.notebook_timeout = 900
# Every graded kernel runs in the OS sandbox (coursekit.autograde.sandbox: bubblewrap, its own uid,
# a cgroup for memory and processes, no network, an empty working folder, nothing of the course but
# the coursekit package). `coursekit grade --no-sandbox` sets COURSEKIT_SANDBOX=0, and every score
# table and feedback file of that run says the notebooks ran unprotected.
c.BoundedExecute.sandbox = os.environ.get("COURSEKIT_SANDBOX", "1") != "0"
# Test cells are judged outside the kernel, against a sandboxed run of the instructor's notebook
# (coursekit.autograde.expected), recorded once and kept here (never beside a lesson: students would
# receive it). Parallel graders point COURSEKIT_EXPECTED_DIR at the course's own folder.
c.BoundedExecute.expected_dir = os.environ.get("COURSEKIT_EXPECTED_DIR") or os.path.join(_here, ".coursekit", "expected")
c.BoundedExecute.memory_limit_mb = 6144
c.BoundedExecute.max_output_chars = 200_000

# Students must not see hidden tests in their feedback (coursekit.autograde.feedback): a test cell
# shows only `ExceptionName: message` of its error (IPython's traceback quotes the source around
# the failing line, hidden tests included, and the grader's file paths), and hidden tests are
# removed from instructor test cells only (nbgrader's ClearHiddenTests raises on a student's cell
# that merely contains the marker text, which would stop the feedback of the whole class).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "coursekit.autograde.feedback.RedactOutputs",
    "coursekit.autograde.feedback.ClearHiddenTests",
]

# Files in a lesson folder besides the notebooks (data, images) are copied to lessons/.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]
