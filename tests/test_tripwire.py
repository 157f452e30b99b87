"""coursekit.autograde.tripwire: what a grading run must not change is read before and after."""

from __future__ import annotations

import os
import sys

from coursekit.autograde.tripwire import changed, snapshot


def _tree(tmp_path):
    course, package, env = tmp_path / "course", tmp_path / "coursekit", tmp_path / "env"
    (course / "solutions" / "01").mkdir(parents=True)
    (course / "solutions" / "01" / "pytorch.ipynb").write_text("{}")
    (course / "autograded").mkdir()
    package.mkdir()
    (package / "grading.py").write_text("x = 1\n")
    (env / "lib" / "site-packages" / "torch" / "__pycache__").mkdir(parents=True)
    (env / "lib" / "site-packages" / "torch" / "__init__.py").write_text("")
    os.symlink("/nonexistent", env / "lib" / "dangling")
    return course, package, env


def test_a_change_anywhere_it_watches_is_reported_and_grading_outputs_are_not(tmp_path, monkeypatch):
    course, package, env = _tree(tmp_path)
    monkeypatch.setattr(sys, "prefix", str(env))
    monkeypatch.setattr(sys, "base_prefix", str(env))
    before = snapshot(course, package)
    assert str(env / "lib" / "site-packages" / "torch" / "__init__.py") in before
    assert str(env / "lib" / "dangling") in before  # a link is a file here, never followed

    st = os.stat(package / "grading.py")
    (package / "grading.py").write_text("x = 2\n")  # same size, same mtime: the content says it
    os.utime(package / "grading.py", ns=(st.st_atime_ns, st.st_mtime_ns))
    (env / "lib" / "site-packages" / "torch" / "__init__.py").write_text("patched = True\n")
    (env / "lib" / "site-packages" / "torch" / "__pycache__" / "x.pyc").write_bytes(b"cache")
    (env / "lib" / "site-packages" / "evil.pth").write_text("import os\n")
    (course / "autograded" / "s1").mkdir()  # what grading writes is not watched
    assert changed(before, snapshot(course, package)) == sorted([
        str(package / "grading.py"),
        str(env / "lib" / "site-packages" / "torch" / "__init__.py"),
        str(env / "lib" / "site-packages" / "evil.pth"),
    ])
