"""Honest correct answers in the styles students really write, one module per lesson.

Each `lesson_NN.py` has `LESSON` and `HONEST = {"pytorch": {answer_id: [code, ...]}, "keras": {...}}`:
several correct answers per exercise, written differently from the solution (loops, lists for
tuples, helper classes, IPython magics, warnings filters, `getattr`/`setattr` with f-strings,
`def forward(self, input)`, a global random draw before returning, ...). Each lesson's autograde
run in tests/test_pipeline.py grades them: every one must score full marks.
"""

import importlib
import pkgutil


def corpus() -> dict[str, dict]:
    """{lesson: HONEST} for every lesson module here."""
    out = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("lesson_"):
            mod = importlib.import_module(f"{__name__}.{info.name}")
            out[mod.LESSON] = mod.HONEST
    return out
