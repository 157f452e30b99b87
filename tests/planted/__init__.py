"""Typical wrong answers, one per exercise, planted into otherwise correct submissions.

Each must lose exactly its exercise's points under `nbgrader autograde`. One module per lesson,
`lesson_NN.py`, defines `LESSON` (the folder name) and `WRONG`: notebook name -> answer cell
grade_id -> the wrong code.
"""

from __future__ import annotations

import importlib
import pkgutil

WRONG: dict[str, dict[str, dict[str, str]]] = {}
for _info in pkgutil.iter_modules(__path__):
    if _info.name.startswith("lesson_"):
        _mod = importlib.import_module(f"{__name__}.{_info.name}")
        WRONG[_mod.LESSON] = _mod.WRONG
