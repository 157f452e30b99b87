"""What student code may do in a graded notebook, checked before the grader runs it.

Student code runs in the same Python process as the tests that grade it, so in-kernel code can
replace anything the tests rely on: the helpers in `coursekit.grading`, the reference
implementations in `coursekit`, numpy/torch functions, builtins, or the IPython machinery that
runs and reports later cells. No in-kernel guard survives code that is free to patch the guard,
so the line is drawn *outside* the kernel, before anything runs: every code cell that nbgrader
does not restore from the instructor's copy (answer cells, cells the student added or edited) is
read as Python and must stay inside what a course answer needs. A cell that steps outside is not
executed; its output says which line broke which rule, so the exercise it belongs to scores 0
and the rest of the notebook is graded as usual.

The rules are an allow-list where that is practical (imports) and a deny-list of the ways to reach
and modify shared objects otherwise:

- imports only from `ALLOWED_MODULES` (numpy, torch, keras, coursekit, ...), no `import *`;
- no `exec`/`eval`/`compile`/`__import__`/`globals`/`vars`/`setattr`/`get_ipython`/`open`/...,
  and `getattr` only with a literal, non-underscore attribute name;
- no dunder names or attributes besides `__init__`/`__name__`/`__doc__`, and no dunder methods
  besides a few that data-set classes need (`__init__`, `__call__`, `__len__`, `__getitem__`,
  `__repr__`, `__str__`);
- no assignment to, or deletion of, an attribute of a module or class reached through an import
  (`np.allclose = ...`, `torch.Tensor.shape = ...`, `F = torch.nn.functional; F.relu = ...`), nor of
  anything that is not a plain variable (`type(x).y = ...`, `[np][0].y = ...`);
- modules and classes reached through an import may not be handed to student functions, used as
  default values or returned (the routes by which they would reach an unchecked attribute
  assignment); names and containers that hold them are tracked like the import itself;
- no top-level rebinding of a builtin or of a name the tests use from the instructor's cells
  (`grading`, `ck`, `torch`, ...), and no `global` of such a name;
- no `metaclass=`, and no call of `.load`/`.loads`/`.load_model` (deserialisers run arbitrary code).

`audit_source` checks one cell; `audit_notebook` a whole notebook given the instructor's release
copy; `coursekit audit NOTEBOOK` lets a student check a notebook before handing it in.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib.util
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "ALLOWED_MODULES",
    "Finding",
    "audit_notebook",
    "audit_source",
    "reserved_names",
    "trusted_cell",
]

ALLOWED_MODULES = frozenset({
    "numpy", "torch", "torchvision", "keras", "tensorflow", "sklearn", "matplotlib", "coursekit",
    "math", "random", "functools", "itertools", "collections", "dataclasses", "typing", "copy",
    "statistics", "enum", "time", "string", "re", "fractions", "decimal",
})
BLOCKED_NAMES = frozenset({
    "__builtins__", "__import__", "exec", "eval", "compile", "globals", "locals", "vars", "getattr",
    "setattr", "delattr", "open", "breakpoint", "input", "get_ipython", "memoryview", "exit",
    "quit", "help",
})
ALLOWED_DUNDERS = frozenset({"__init__", "__name__", "__doc__", "__main__"})
ALLOWED_DUNDER_METHODS = frozenset({"__init__", "__call__", "__len__", "__getitem__", "__repr__", "__str__"})
# attribute names that lead to the interpreter, the file system, compiled code or deserialisers
BLOCKED_ATTRS = frozenset({
    "sys", "os", "builtins", "importlib", "subprocess", "inspect", "gc", "ctypes",
    "ctypeslib", "pickle", "shutil", "io", "threading", "signal", "atexit", "library",
    "cpp_extension", "load", "loads", "load_model", "load_inline", "load_library", "load_op_library",
    "system", "popen", "run_cell", "run_line_magic", "run_cell_magic", "register_magic_function",
    "f_globals", "f_locals", "f_back", "gi_frame", "tb_frame", "__dict__",
})
# methods that change a container in place: not on anything reached through an import
MUTATING_METHODS = frozenset({"append", "extend", "insert", "remove", "pop", "clear", "update",
                              "setdefault", "popitem", "add", "discard", "sort", "reverse"})
# builtins that receive a class to inspect it, never to change it
_INSPECTING_CALLS = frozenset({"isinstance", "issubclass", "type", "print", "repr", "str", "id", "hasattr"})
_BUILTIN_NAMES = frozenset(dir(builtins))
_DUNDER = re.compile(r"__\w+__")


@dataclass(frozen=True)
class Finding:
    """One broken rule: the line (1-based, in the cell) and what was done."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


# ---------------------------------------------------------------------------------------------
def _python_source(source: str) -> str:
    """The Python that IPython would run for `source` (magics and `!cmd` become calls)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython is a dependency of ipykernel
        return source
    return TransformerManager().transform_cell(source)


def _chain_root(node: ast.AST) -> ast.AST:
    """`a.b[c].d` -> the node for `a` (through attribute and subscript access only)."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node


@functools.lru_cache(maxsize=4096)
def _is_module(dotted: str) -> bool:
    """Whether `dotted` names a module, found on disk without importing it (importing torch or
    TensorFlow in the grader would cost seconds per notebook)."""
    top, *rest = dotted.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if not rest:
        return True
    for base in spec.submodule_search_locations or []:
        path = os.path.join(base, *rest)
        if os.path.isdir(path) or os.path.exists(path + ".py"):
            return True
    return False


def _module_or_class(dotted: str) -> bool:
    """A module, or (by the naming convention every library here follows) a class."""
    last = dotted.rsplit(".", 1)[-1]
    camel = last[:1].isupper() and any(ch.islower() for ch in last)
    return camel or _is_module(dotted)


@dataclass
class AuditState:
    """What earlier cells bound, carried from cell to cell."""

    library: set[str] = field(default_factory=set)
    tainted: set[str] = field(default_factory=set)
    paths: dict[str, str] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)


class _Auditor(ast.NodeVisitor):
    def __init__(self, state: AuditState, reserved: frozenset[str]):
        self.library = state.library  # names bound to anything reached through an import
        self.tainted = state.tainted  # of those, names bound to modules or classes
        self.paths = state.paths  # name -> dotted path it is bound to ("np" -> "numpy", "F" -> "torch.nn.functional")
        self.imports = state.imports  # name -> dotted target of its first top-level import
        self.reserved = reserved
        self.findings: list[Finding] = []
        self.depth = 0  # 0 at the cell's top level

    # ---- helpers
    def flag(self, node: ast.AST, message: str) -> None:
        self.findings.append(Finding(getattr(node, "lineno", 0), message))

    def dotted(self, node: ast.AST) -> str | None:
        """`nn.Linear` -> "torch.nn.Linear" when `nn` is bound to an import path."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in self.paths:
            return None
        return ".".join([self.paths[node.id], *reversed(parts)])

    def is_tainted_chain(self, node: ast.AST) -> bool:
        """A name or attribute chain that is a module or class reached through an import
        (`np`, `torch.nn.functional`, `nn.Linear`): one that student code could modify."""
        if not isinstance(node, (ast.Name, ast.Attribute)):
            return False
        root = node
        while isinstance(root, ast.Attribute):
            root = root.value
        if not isinstance(root, ast.Name):
            return False
        if isinstance(node, ast.Name) and node.id in self.tainted:
            return True
        path = self.dotted(node)
        return path is not None and _module_or_class(path)

    def is_library_chain(self, node: ast.AST) -> bool:
        """Anything reached through an import without a call: `np.random`, `ck.PLACEMENTS[0]`."""
        root = _chain_root(node)
        return isinstance(root, ast.Name) and (root.id in self.library or root.id in self.tainted)

    def escaping_refs(self, node: ast.AST | None) -> list[ast.AST]:
        """Tainted chains in `node` used as values: not called, not handed to a library or isinstance."""
        found: list[ast.AST] = []

        def walk(n: ast.AST | None) -> None:
            if n is None or isinstance(n, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                return
            if isinstance(n, ast.Call):
                library = self.is_library_chain(n.func)
                inspecting = isinstance(n.func, ast.Name) and n.func.id in _INSPECTING_CALLS
                if not library and not isinstance(n.func, ast.Name):
                    walk(n.func)
                for arg in [*n.args, *(k.value for k in n.keywords)]:
                    if (library or inspecting) and self.is_tainted_chain(arg):
                        continue  # nn.Sequential(...), isinstance(m, nn.Conv2d): the library gets it
                    walk(arg)
                return
            if isinstance(n, (ast.Name, ast.Attribute)) and isinstance(_chain_root(n), ast.Name):
                if self.is_tainted_chain(n):
                    found.append(n)
                return  # `np.float32` is a dtype: its root `np` is not handed over
            for child in ast.iter_child_nodes(n):
                walk(child)

        walk(node)
        return found

    def bind(self, target: ast.AST, value: ast.AST | None, node: ast.AST) -> None:
        """Track what an assignment binds: aliases of imports, and modules/classes in any form."""
        carries = bool(self.escaping_refs(value))
        alias = value if isinstance(value, (ast.Name, ast.Attribute)) and self.is_library_chain(value) else None
        for name_node in ast.walk(target):
            if isinstance(name_node, ast.Name) and isinstance(name_node.ctx, ast.Store):
                name = name_node.id
                self.check_rebinding(name, node)
                self.tainted.discard(name)  # a new value: forget what the name held before
                self.library.discard(name)
                self.paths.pop(name, None)
                if carries:
                    self.tainted.add(name)
                if alias is not None and isinstance(target, ast.Name):
                    self.library.add(name)
                    path = self.dotted(alias)
                    if path is not None:
                        self.paths[name] = path
        self.check_store_target(target)

    def check_rebinding(self, name: str, node: ast.AST, target: str | None = None) -> None:
        if self.depth:
            return  # a local name shadows nothing the tests see
        if name in self.reserved:
            if target is not None and self.imports.get(name) == target:
                return  # the same import again
            self.flag(node, f"rebinds `{name}`, which the tests use; pick another name")
        elif name in _BUILTIN_NAMES:
            self.flag(node, f"rebinds the builtin `{name}`; pick another name")

    def check_store_target(self, target: ast.AST) -> None:
        for t in ast.walk(target):
            if isinstance(t, (ast.Attribute, ast.Subscript)) and isinstance(t.ctx, (ast.Store, ast.Del)):
                root = _chain_root(t)
                text = ast.unparse(t)
                if isinstance(t, ast.Attribute) and not isinstance(root, ast.Name):
                    self.flag(t, f"assigns `{text}`: attributes may only be set on plain variables")
                elif isinstance(root, ast.Name) and (root.id in self.library or root.id in self.tainted):
                    self.flag(t, f"changes `{text}`, part of `{root.id}` (from an import), "
                                 "for everyone, the tests included")
                elif isinstance(root, ast.Name) and root.id in _BUILTIN_NAMES:
                    self.flag(t, f"changes `{text}` on the builtin `{root.id}`")
                elif isinstance(root, ast.Name) and root.id in self.reserved and not self.depth:
                    self.flag(t, f"changes `{text}`: `{root.id}` belongs to the lesson and the tests read it")

    # ---- statements
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.check_module(alias.name, node)
            bound = alias.asname or alias.name.split(".")[0]
            target = alias.name if alias.asname else bound
            self.check_rebinding(bound, node, target)
            self.record_import(bound, target)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.flag(node, "relative import")
        module = node.module or ""
        self.check_module(module, node)
        for alias in node.names:
            if alias.name == "*":
                self.flag(node, f"`from {module} import *` may shadow names the tests use; import names one by one")
                continue
            bound = alias.asname or alias.name
            self.check_rebinding(bound, node, f"{module}.{alias.name}")
            self.record_import(bound, f"{module}.{alias.name}")

    def record_import(self, bound: str, target: str) -> None:
        self.library.add(bound)
        self.paths[bound] = target
        if _module_or_class(target):
            self.tainted.add(bound)
        else:
            self.tainted.discard(bound)
        if self.depth == 0 and bound not in self.imports:
            self.imports[bound] = target

    def check_module(self, module: str, node: ast.AST) -> None:
        if module.split(".")[0] not in ALLOWED_MODULES:
            self.flag(node, f"imports `{module}`; answers may import only {', '.join(sorted(ALLOWED_MODULES))}")

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.bind(target, node.value, node)
            self.visit_target_loads(target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.value) if node.value is not None else None
        self.bind(node.target, node.value, node)
        self.visit_target_loads(node.target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        self.bind(node.target, node.value, node)
        self.visit_target_loads(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.bind(node.target, node.value, node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self.bind(target, None, node)
            self.visit_target_loads(target)

    def visit_target_loads(self, target: ast.AST) -> None:
        """Check what a store target reads (`a[f(x)].b = ...`) without re-checking the store."""
        node = target
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            if isinstance(node, ast.Attribute):
                self.check_attribute_name(node)
            else:
                self.visit(node.slice)
            node = node.value
        if isinstance(node, (ast.Tuple, ast.List, ast.Starred)):
            for child in ast.iter_child_nodes(node):
                if not isinstance(child, ast.expr_context):
                    self.visit_target_loads(child)
        elif isinstance(node, ast.Name):
            self.check_name(node)
        elif not isinstance(node, ast.expr_context):
            self.visit(node)

    def visit_For(self, node: ast.For) -> None:
        self.visit(node.iter)
        self.bind(node.target, node.iter, node)
        self.visit_target_loads(node.target)
        for stmt in [*node.body, *node.orelse]:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self.bind(item.optional_vars, item.context_expr, node)
                self.visit_target_loads(item.optional_vars)
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncWith = visit_With

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self.visit(node.iter)
        self.depth += 1
        self.bind(node.target, node.iter, node.iter)
        self.depth -= 1
        self.visit_target_loads(node.target)
        for cond in node.ifs:
            self.visit(cond)

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            if name in self.reserved or name in _BUILTIN_NAMES:
                self.flag(node, f"`global {name}`: `{name}` is used by the tests or is a builtin")

    visit_Nonlocal = visit_Global

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.check_rebinding(node.name, node)
        if _DUNDER.fullmatch(node.name) and node.name not in ALLOWED_DUNDER_METHODS:
            self.flag(node, f"defines `{node.name}`: objects that redefine how they compare, convert or "
                            "look up attributes can fake a right answer")
        for deco in node.decorator_list:
            self.visit(deco)
        args = node.args
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.visit(default)
            for ref in self.escaping_refs(default):
                self.flag(ref, f"uses `{ast.unparse(ref)}` (a module or class from an import) as a default value")
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if a is not None and a.annotation is not None:
                self.visit(a.annotation)
        params = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
                  if a is not None}
        saved = (set(self.tainted), set(self.library), dict(self.paths))
        self.tainted -= params  # parameters shadow outer names
        self.library -= params
        for p in params:
            self.paths.pop(p, None)
        self.depth += 1
        for stmt in node.body:
            self.visit(stmt)
        self.depth -= 1
        self.tainted.clear(); self.tainted |= saved[0]
        self.library.clear(); self.library |= saved[1]
        self.paths.clear(); self.paths.update(saved[2])

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.check_rebinding(node.name, node)
        for kw in node.keywords:
            if kw.arg == "metaclass":
                self.flag(node, "`metaclass=` changes how the class behaves behind its methods")
        for expr in [*node.bases, *node.decorator_list, *(k.value for k in node.keywords)]:
            self.visit(expr)
        self.depth += 1
        for stmt in node.body:
            self.visit(stmt)
        self.depth -= 1

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None:
            self.visit(node.value)
            for ref in self.escaping_refs(node.value):
                self.flag(ref, f"returns `{ast.unparse(ref)}`, a module or class from an import; "
                               "return an instance or a value instead")

    visit_Yield = visit_YieldFrom = visit_Return

    # ---- expressions
    def check_name(self, node: ast.Name) -> None:
        if node.id in BLOCKED_NAMES:
            self.flag(node, f"uses `{node.id}`, which can change the grader or the tests")
        elif _DUNDER.fullmatch(node.id) and node.id not in ALLOWED_DUNDERS:
            self.flag(node, f"uses `{node.id}`, which reaches Python's internals")

    def visit_Name(self, node: ast.Name) -> None:
        self.check_name(node)

    def check_attribute_name(self, node: ast.Attribute) -> None:
        attr = node.attr
        if _DUNDER.fullmatch(attr) and attr not in ALLOWED_DUNDERS:
            self.flag(node, f"uses `.{attr}`, which reaches Python's internals")
        elif attr in BLOCKED_ATTRS:
            self.flag(node, f"uses `.{attr}`, which reaches the interpreter, files or code loaders")
        elif attr.startswith("_") and not _DUNDER.fullmatch(attr) and self.is_library_chain(node):
            self.flag(node, f"uses `{ast.unparse(node)}`, a private part of a library")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.check_attribute_name(node)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and _DUNDER.search(node.value) and node.value not in ALLOWED_DUNDERS:
            self.flag(node, f"the string {node.value!r} names a Python internal")

    def visit_Call(self, node: ast.Call) -> None:
        callee = node.func
        if isinstance(callee, ast.Name) and callee.id == "getattr":
            name = node.args[1] if len(node.args) > 1 else None
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str) and not name.value.startswith("_")):
                self.flag(node, "`getattr` with a computed or private attribute name")
            for arg in [*node.args[:1], *node.args[2:], *(k.value for k in node.keywords)]:
                self.visit(arg)
            return
        if isinstance(callee, ast.Name) and callee.id == "type" and len(node.args) == 3:
            self.flag(node, "`type(name, bases, namespace)` builds a class behind the checks")
        if isinstance(callee, ast.Attribute) and callee.attr in MUTATING_METHODS:
            root = _chain_root(callee.value)
            if self.is_library_chain(callee.value) or (
                    isinstance(root, ast.Name) and root.id in self.reserved and not self.depth):
                self.flag(node, f"`{ast.unparse(callee)}(...)` changes `{ast.unparse(callee.value)}`, shared with the tests")
        library = self.is_library_chain(callee)
        inspecting = isinstance(callee, ast.Name) and callee.id in _INSPECTING_CALLS
        if not (library or inspecting):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                for ref in self.escaping_refs(arg):
                    self.flag(ref, f"passes `{ast.unparse(ref)}` (a module or class from an import) to "
                                   f"`{ast.unparse(callee)}`; call the library yourself instead")
        self.generic_visit(node)


def audit_source(source: str, reserved: Iterable[str] = (), state: AuditState | None = None) -> list[Finding]:
    """Rule violations in one cell's `source` (IPython syntax allowed).

    `reserved`: names the tests use from instructor cells (rebinding them is flagged).
    `state`: what earlier cells bound (updated in place)."""
    try:
        tree = ast.parse(_python_source(source))
    except SyntaxError:
        return []  # it cannot run, so it cannot tamper; the cell fails on its own
    auditor = _Auditor(state if state is not None else AuditState(), frozenset(reserved))
    for stmt in tree.body:
        auditor.visit(stmt)
    return sorted(set(auditor.findings), key=lambda f: (f.line, f.message))


# ---------------------------------------------------------------------------------------------
def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _is_restored(cell) -> bool:
    """nbgrader puts back the instructor's source of locked cells (tests, read-only cells)."""
    md = _nbgrader(cell)
    return bool(md.get("locked")) and not md.get("solution") and bool(md.get("grade_id"))


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names loaded, names bound at top level) in `source`."""
    try:
        tree = ast.parse(_python_source(source))
    except SyntaxError:
        return set(), set()
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    bound: set[str] = set()
    for stmt in tree.body:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                bound.add(n.id)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(stmt.name)
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            bound |= {a.asname or a.name.split(".")[0] for a in stmt.names}
    return loaded, bound


def reserved_names(release_cells: list, test_sources: Iterable[str]) -> frozenset[str]:
    """Names the tests take from the instructor's cells: loaded by a test, bound by an instructor
    (non-answer) cell of the release notebook, and not among the names the exercises ask for."""
    instructor, answers = set(), set()
    for cell in release_cells:
        if cell.get("cell_type") != "code":
            continue
        _, bound = _names("".join(cell.get("source", "")))
        (answers if _nbgrader(cell).get("solution") else instructor).update(bound)
    loaded: set[str] = set()
    for src in test_sources:
        used, bound = _names(src)
        loaded |= used - bound  # a name the test binds itself is the test's own
    return frozenset((loaded & instructor) - answers)


def trusted_cell(cell, release_sources: set[str]) -> bool:
    """Cells the student cannot have changed: restored by nbgrader, or identical to an instructor
    (non-answer) cell of the release notebook."""
    if cell.get("cell_type") != "code":
        return True
    if _is_restored(cell):
        return True
    return not _nbgrader(cell).get("solution") and "".join(cell.get("source", "")) in release_sources


def audit_notebook(nb, release_nb) -> dict[int, list[Finding]]:
    """Findings per cell index for the cells of `nb` the student could have written.

    `release_nb` is the student version the instructor released (its unmarked code cells are
    trusted when unchanged)."""
    release_cells = list(release_nb["cells"])
    release_sources = {"".join(c.get("source", "")) for c in release_cells
                       if c.get("cell_type") == "code" and not _nbgrader(c).get("solution")}
    tests = ["".join(c.get("source", "")) for c in nb["cells"] if c.get("cell_type") == "code" and _is_restored(c)]
    reserved = reserved_names(release_cells, tests)
    state = AuditState()
    out: dict[int, list[Finding]] = {}
    for index, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source", ""))
        if trusted_cell(cell, release_sources):
            # instructor cells are not judged, but what they import is tracked for later cells
            audit_source(source, state=state)
            continue
        findings = audit_source(source, reserved=reserved, state=state)
        if findings:
            out[index] = findings
    return out
