"""Near-copies among a class's answers: `coursekit similarity LESSON`.

For each exercise (answer cell) of each notebook, every pair of submissions is compared with
copydetect's fingerprinting (the MOSS method, every k-gram kept): the code is tokenized and normalized first — names,
strings and comments replaced or dropped, formatting ignored — so renamed variables, new comments
and re-indented or reordered functions do not hide a copy. What is not evidence is left out:
- the released notebook's cell (the stub and its docstring) is boilerplate;
- fingerprints that a large part of the class shares (`common`, default: half of the answers, at
  least 3) are boilerplate too: the short idioms every correct answer writes alike;
- answers shorter than `min_tokens` normalized tokens after that are not compared at all;
- answers that only assign plain values (a dict of predictions, a number) are not compared either:
  every right answer is the same value, so two alike prove nothing.

A pair's similarity is the larger of the two shares of their compared tokens that the other answer
contains (copydetect's per-file similarity); pairs at or above `threshold` (default 0.7) are listed,
most similar first, with the matching lines of both answers. A listed pair is a place to look, not a
verdict. Measured on this course: a copy with renamed names, a new comment and its methods reordered
scores 0.94; of the pairs of independent correct answers (the solution and the honest corpus of
tests/honest/, per exercise), the most alike scores 0.61 (tests/test_similarity.py). Scores are the
same on every run (see WINDOW).
Pages go to reports/LESSON/ beside `coursekit report` (git-ignored, never in the course site).
"""

from __future__ import annotations

import html
import io
import itertools
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .notebooks import Course, CourseError

__all__ = ["Pair", "compare_answers", "is_value_answer", "lesson_answers", "similar_pairs", "write_page"]

K = 25  # copydetect's noise threshold: matches shorter than 25 normalized tokens are ignored
WINDOW = 1  # every k-gram is a fingerprint: copydetect hashes with hash(), salted per process, so a wider
# winnowing window would pick different fingerprints, and give different scores, on every run


@dataclass(frozen=True)
class Pair:
    notebook: str
    exercise: str
    a: str
    b: str
    similarity: float
    lines_a: tuple[int, ...]  # 1-based line numbers of a's answer that match b's
    lines_b: tuple[int, ...]


def _answer_cells(path: Path) -> dict[str, str]:
    """{answer grade id: source} of the nbgrader solution cells of the notebook at `path` ({} if unreadable)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        out = {}
        for cell in nb["cells"]:
            meta = (cell.get("metadata") or {}).get("nbgrader") or {}
            if meta.get("solution") and isinstance(meta.get("grade_id"), str):
                src = cell.get("source", "")
                out[meta["grade_id"]] = "".join(src) if isinstance(src, list) else str(src)
        return out
    except (OSError, ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
        return {}


def lesson_answers(course: Course, lesson: str) -> dict[tuple[str, str], dict[str, str]]:
    """{(notebook, answer id): {student: code}} from submitted/<student>/LESSON/<notebook>.ipynb."""
    submitted = course.root / "submitted"
    if not submitted.is_dir():
        raise CourseError(f"no submissions folder {submitted}: collect submissions into submitted/<student>/{lesson}/")
    out: dict[tuple[str, str], dict[str, str]] = {}
    for folder in sorted(p for p in submitted.iterdir() if p.is_dir() and not p.is_symlink()):
        for nb in sorted((folder / lesson).glob("*.ipynb")) if (folder / lesson).is_dir() else []:
            if nb.is_symlink():
                continue  # never follow a link out of a submission (coursekit grade refuses them too)
            for gid, code in _answer_cells(nb).items():
                out.setdefault((nb.stem, gid), {})[folder.name] = code
    return out


def _fingerprint(code: str, boilerplate=()):
    from copydetect import CodeFingerprint

    return CodeFingerprint("answer.py", K, WINDOW, boilerplate=list(boilerplate), language="python", fp=io.StringIO(code))


def _lines(code: str, slices) -> tuple[int, ...]:
    """The 1-based lines of `code` that the character slices [start, end) touch."""
    starts = [0] + [i + 1 for i, ch in enumerate(code) if ch == "\n"]
    touched = set()
    for start, end in zip(*slices):
        for line, first in enumerate(starts, start=1):
            last = starts[line] - 1 if line < len(starts) else len(code)
            if first < int(end) and last >= int(start):
                touched.add(line)
    return tuple(sorted(touched))


def is_value_answer(code: str) -> bool:
    """Whether `code` only assigns plain values (literals: a dict of predictions, a list, a number),
    as the prediction exercises ask: right answers are then alike whoever wrote them."""
    import ast

    try:
        body = ast.parse(code).body
    except SyntaxError:
        return False
    for node in body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if value is None:
            return False
        try:
            ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return False
    return bool(body)


def compare_answers(codes: dict[str, str], released: str = "", *, notebook: str = "", exercise: str = "",
                    threshold: float = 0.7, min_tokens: int = 40, common: float = 0.5) -> list[Pair]:
    """The pairs of `codes` ({student: code}) at or above `threshold`, most similar first."""
    from copydetect import compare_files

    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1]; received {threshold!r}.")
    base = set(_fingerprint(released).hashes) if released.strip() else set()
    codes = {s: code for s, code in codes.items() if not is_value_answer(code)}
    prints = {s: _fingerprint(code, base) for s, code in codes.items()}
    # what much of the class writes alike is not evidence of copying
    counts = Counter(h for fp in prints.values() for h in set(fp.hashes))
    cut = max(3, common * len(prints))
    shared = {h for h, n in counts.items() if n >= cut}
    if shared:
        prints = {s: _fingerprint(codes[s], base | shared) for s in prints}
    long_enough = sorted(s for s, fp in prints.items() if fp.token_coverage >= min_tokens)
    pairs = []
    for a, b in itertools.combinations(long_enough, 2):
        _, (sim_a, sim_b), (slices_a, slices_b) = compare_files(prints[a], prints[b])
        score = float(max(sim_a, sim_b))
        if score >= threshold:
            pairs.append(Pair(notebook, exercise, a, b, round(score, 3), _lines(codes[a], slices_a),
                              _lines(codes[b], slices_b)))
    return sorted(pairs, key=lambda p: (-p.similarity, p.a, p.b))


def similar_pairs(course: Course, lesson: str, *, threshold: float = 0.7, min_tokens: int = 40,
                  common: float = 0.5) -> tuple[list[Pair], dict[tuple[str, str], dict[str, str]]]:
    """Every listed pair of `lesson`, over all exercises, most similar first; and the answers read."""
    answers = lesson_answers(course, lesson)
    pairs = []
    for (notebook, gid), codes in sorted(answers.items()):
        released = _answer_cells(course.lessons_dir / lesson / f"{notebook}.ipynb").get(gid, "")
        pairs += compare_answers(codes, released, notebook=notebook, exercise=gid, threshold=threshold,
                                 min_tokens=min_tokens, common=common)
    return sorted(pairs, key=lambda p: (-p.similarity, p.notebook, p.exercise, p.a, p.b)), answers


def write_page(lesson: str, pairs: list[Pair], answers: dict[tuple[str, str], dict[str, str]], dest: Path) -> Path:
    """similarity.html in `dest`: each listed pair side by side, matching lines marked."""
    esc = html.escape

    def code(text: str, marked: tuple[int, ...]) -> str:
        rows = [f"<span class=m>{esc(line) or ' '}</span>" if i in marked else esc(line)
                for i, line in enumerate(text.splitlines(), start=1)]
        return "<pre>" + "\n".join(rows) + "</pre>"

    blocks = []
    for p in pairs:
        codes = answers[(p.notebook, p.exercise)]
        blocks.append(f"<h2>{esc(p.notebook)} {esc(p.exercise)}: {esc(p.a)} and {esc(p.b)} — "
                      f"{100 * p.similarity:.0f}%</h2><table><tr><th>{esc(p.a)}</th><th>{esc(p.b)}</th></tr>"
                      f"<tr><td>{code(codes[p.a], p.lines_a)}</td><td>{code(codes[p.b], p.lines_b)}</td></tr></table>")
    body = "".join(blocks) or "<p>No pair reached the threshold.</p>"
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "similarity.html"
    path.write_text(f"<!DOCTYPE html><html><head><meta charset=utf-8><title>{esc(lesson)}: similar answers</title>"
                    "<style>body{font-family:sans-serif;margin:2em}td{vertical-align:top;border:1px solid #ccc}"
                    "pre{margin:0;padding:.5em}.m{background:#ffe08a}</style></head><body>"
                    f"<h1>{esc(lesson)}: answers that are near copies</h1><p>Names, strings, comments and "
                    "formatting are ignored; the released cell and what much of the class writes alike are left "
                    "out. A pair here is a place to look, not a verdict.</p>" + body + "</body></html>",
                    encoding="utf-8")
    return path
