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
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_here, "gradebook.db")

# A torch-only or keras-only class: set this to "pytorch" or "keras" (a glob over notebook
# names) before generating and grading, or pass --framework to the coursekit commands.
c.CourseDirectory.notebook_id = os.environ.get("COURSEKIT_NOTEBOOK_ID", "*")

# Grading runs lessons at their small size (coursekit.runsize reads NBGRADER_EXECUTION);
# a cell that needs more than this is a bug in the lesson or an endless loop in a submission.
c.ExecutePreprocessor.timeout = 120
c.Execute.timeout = 120

# Students must not see hidden tests in their feedback.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "nbgrader.preprocessors.ClearHiddenTests",
]

# Files in a lesson folder besides the notebooks (data, images) are copied to lessons/.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]
