"""coursekit.autograde.audit: the rules that keep student code from tampering with grading.

Fast checks, no kernel: every attack in tests/test_tamper.py and many more idioms are flagged;
every solution, every planted wrong answer and the ordinary things students write are not.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbtools import make_submission, solution_sources
from test_tamper import ATTACKS

from coursekit.autograde.audit import AuditState, audit_notebook, audit_source

ROOT = Path(__file__).resolve().parents[1]
SETUP = ("import numpy as np\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
         "from coursekit import data, grading, plots\nfrom coursekit import torch as ck\n")
RESERVED = {"np", "torch", "nn", "F", "grading", "ck", "RESULTS"}


def audit(code: str) -> list[str]:
    state = AuditState()
    audit_source(SETUP, state=state)
    return [str(f) for f in audit_source(code, reserved=RESERVED, state=state)]


MORE_ATTACKS = {
    "delete-library-function": "del np.allclose",
    "augmented-patch": "torch.Tensor.shape += ()",
    "class-of-instance": "type(torch.zeros(1)).numpy = lambda self: None",
    "dunder-class": "torch.zeros(1).__class__.numpy = lambda self: None",
    "dunder-dict": "np.__dict__['allclose'] = print",
    "vars": "vars(np)['allclose'] = print",
    "getattr-computed": "name = 'all' + 'close'\nf = getattr(np, name)",
    "getattr-dunder": "g = getattr(np, '__dict__')",
    "operator-attrgetter": "import operator\ndunder = operator.attrgetter('__globals__')",
    "string-dunder": "key = '__builtins__'",
    "class-alias": "Lin = nn.Linear\nLin.forward = lambda self, x: x",
    "alias-through-ifexp": "m = np if True else torch\nm.allclose = print",
    "loop-over-modules": "for m in [np, torch]:\n    m.allclose = print",
    "dict-of-modules": "mods = {'n': np}\nmods['n'].allclose = print",
    "return-module": "def get():\n    return np\nget().allclose = print",
    "default-arg": "def f(m=np):\n    m.allclose = print\nf()",
    "pass-class": "def patch(cls):\n    cls.forward = lambda self, x: x\npatch(nn.Conv2d)",
    "mutate-library-list": "ck.FRAMEWORK_NOTEBOOKS.update(x=1)",
    "mutate-library-alias": "table = ck.FRAMEWORK_NOTEBOOKS\ntable['x'] = 1",
    "torch-os": "torch.os.environ['NBGRADER_EXECUTION'] = ''",
    "torch-library": "lib = torch.library.Library('aten', 'IMPL')",
    "deserialise": "state = torch.load('x.pt')",
    "private-library": "torch._C._set_grad_enabled(False)",
    "metaclass": "class M(type):\n    pass\nclass X(metaclass=M):\n    pass",
    "type-3-args": "Anything = type('Anything', (), {})",
    "eq-method": "class A:\n    def __eq__(self, other):\n        return True",
    "getattr-method": "class A:\n    def __getattr__(self, name):\n        return 1",
    "torch-function": "class T(torch.Tensor):\n    def __torch_function__(cls, *a, **k):\n        pass",
    "global-reserved": "def f():\n    global ck\n    ck = None",
    "star-import": "from numpy import *",
    "rebind-builtin": "def len(x):\n    return 4",
    "rebind-test-name": "grading = None",
    "import-other-target": "import numpy as torch",
    "builtins-object": "__builtins__['len'] = print",
    "compile": "code = compile('1', 'x', 'eval')",
    "open-file": "open('x.txt', 'w').write('1')",
    "shell-escape": "!rm -rf /",
    "cell-magic": "%%bash\nrm -rf /",
    "line-magic": "%run other.py",
    "os-import": "import os",
    "subprocess": "import subprocess",
    "threading": "import threading",
    "relative-import": "from . import grading",
    "walrus-alias": "(m := np).allclose = print",
    "comprehension-alias": "[m.__dict__ for m in [np]]",
    "setattr-on-self-module": "setattr(np, 'allclose', print)",
    "mutate-lesson-data": "RESULTS['x'] = 1",
    "mutate-lesson-data-method": "RESULTS.update(x=1)",
}

INNOCENT = {
    "functions": "def concat_shape(shapes, axis):\n    out = list(shapes[0])\n    out[axis] = sum(s[axis] for s in shapes)\n    return tuple(out)",
    "dtype-argument": "x = np.zeros(3).astype(np.float32)\ny = torch.zeros(3, dtype=torch.float32)",
    "isinstance": "def is_conv(m):\n    return isinstance(m, nn.Conv2d)",
    "module-class": ("class Block(nn.Module):\n    def __init__(self, c):\n        super().__init__()\n"
                     "        self.conv = nn.Conv2d(c, c, 1)\n        self.act = nn.ReLU()\n\n"
                     "    def forward(self, x):\n        return self.act(self.conv(x))"),
    "old-style-super": "class B(nn.Module):\n    def __init__(self):\n        nn.Module.__init__(self)",
    "init-loop": ("def init_weights(model):\n    for m in model.modules():\n        if isinstance(m, nn.Conv2d):\n"
                  "            nn.init.kaiming_normal_(m.weight)\n            m.bias.data.zero_()\n"
                  "            m.weight.requires_grad = True"),
    "no-grad-assign": "lin = nn.Linear(2, 2)\nwith torch.no_grad():\n    lin.weight[:] = 0\n    lin.bias.fill_(1)",
    "reimport": "import numpy as np\nimport torch\nfrom coursekit import grading",
    "sequential": "model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten())",
    "activation-instances": "acts = {'relu': nn.ReLU(), 'tanh': nn.Tanh()}\nact = acts['relu']",
    "literal-getattr": "w = getattr(nn.Linear(2, 2), 'weight')",
    "lambda-and-comprehension": "sq = [x * x for x in range(3)]\nf = lambda t: F.relu(t) + 1",
    "dataset": ("class Pairs:\n    def __init__(self, x):\n        self.x = x\n\n    def __len__(self):\n        return len(self.x)\n\n"
                "    def __getitem__(self, i):\n        return self.x[i]"),
    "module-constants": "best = np.inf\nangle = np.pi * 2\nbest = min(best, 3.0)",
    "main-guard": "if __name__ == '__main__':\n    pass",
    "print-type": "print(type(torch.zeros(1)).__name__)",
    "local-shadowing": "def f(x):\n    sum = x + 1\n    return sum",
    "keras-style": "layer = nn.Linear(2, 2)\nlayer.training = False",
    "syntax-error": "def broken(:\n    pass",
    "display": "display(torch.zeros(2))",
    "local-copy-of-lesson-data": "mine = dict(RESULTS)\nmine['x'] = 1",
}


@pytest.mark.parametrize("name", sorted({**ATTACKS, **MORE_ATTACKS}))
def test_tampering_code_is_flagged(name):
    code = {**ATTACKS, **MORE_ATTACKS}[name]
    assert audit(code), f"{name} was not flagged:\n{code}"


@pytest.mark.parametrize("name", sorted(INNOCENT))
def test_ordinary_student_code_is_not_flagged(name):
    assert audit(INNOCENT[name]) == [], INNOCENT[name]


def test_findings_name_the_line_and_the_rule():
    found = audit("x = 1\nnp.allclose = print")
    assert found and found[0].startswith("line 2:") and "np.allclose" in found[0] and "tests" in found[0]


def _lessons():
    for path in sorted((ROOT / "tests" / "planted").glob("lesson_*.py")):
        mod = importlib.import_module(f"planted.{path.stem}")
        for framework, wrong in mod.WRONG.items():
            yield mod.LESSON, framework, wrong


@pytest.mark.parametrize("lesson,framework,wrong", list(_lessons()), ids=lambda v: v if isinstance(v, str) else "")
def test_solutions_and_planted_wrong_answers_pass_the_audit(tmp_path, lesson, framework, wrong):
    """No false alarm on the course's own answers: a flagged solution would lose its points."""
    release = ROOT / "lessons" / lesson / f"{framework}.ipynb"
    solved = solution_sources(ROOT / "solutions" / lesson / f"{framework}.ipynb")
    for label, answers in (("solution", solved), ("planted wrong answers", {**solved, **wrong})):
        dest = tmp_path / f"{label}.ipynb"
        make_submission(release, answers, dest)
        found = audit_notebook(nbformat.read(dest, as_version=4), nbformat.read(release, as_version=4))
        assert found == {}, f"{lesson}/{framework} {label}: {found}"


def test_untouched_instructor_cells_are_trusted_and_edited_ones_are_not(tmp_path):
    release = ROOT / "lessons" / "01-shape-alignment" / "pytorch.ipynb"
    nb = nbformat.read(release, as_version=4)
    assert audit_notebook(nb, nb) == {}
    setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells[setup].source += "\nck = None"
    assert list(audit_notebook(nb, nbformat.read(release, as_version=4))) == [setup]


def test_audit_command_reports_and_exits_nonzero(tmp_path):
    release = ROOT / "lessons" / "01-shape-alignment" / "pytorch.ipynb"
    bad = tmp_path / "01-shape-alignment" / "pytorch.ipynb"
    make_submission(release, {"ex1-answer": "import os\nos.system('true')"}, bad)
    good = tmp_path / "good" / "pytorch.ipynb"
    make_submission(release, {}, good)
    run = [sys.executable, "-m", "coursekit.cli", "--root", str(ROOT), "audit"]
    proc = subprocess.run([*run, str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "imports `os`" in proc.stdout and "cell " in proc.stdout
    proc = subprocess.run([*run, str(good), "--lesson", "01-shape-alignment"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr
