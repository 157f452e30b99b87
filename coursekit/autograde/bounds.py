"""Bounded execution for `nbgrader autograde`: time, memory and output limits per notebook.

nbgrader's own `Execute` stops a cell after `timeout` seconds by interrupting the kernel, but a
submission that ignores the interrupt, exhausts memory, kills its kernel or prints gigabytes makes
the whole notebook fail: the student is left ungraded and the command exits 1. `BoundedExecute`
keeps nbgrader's behaviour for well-behaved notebooks and, when a bound is hit,

- writes the reason as an error output into the cell that hit it (the student sees it in the
  feedback, and the test cell it lands in fails);
- marks every later code cell as not run, with the same reason, so their tests score 0;
- keeps the points of the tests that ran before, and lets grading move on to the next student.

Before anything runs it also reads every cell the student could have written
(`coursekit.autograde.audit`): a cell that would tamper with the grader, the tests or the libraries
they use is not executed, and its output names the line and the rule (`TamperingBlocked`).

Enable it in `nbgrader_config.py` (this course's config does):

    c.Autograde.autograde_preprocessors = [..."coursekit.autograde.bounds.BoundedExecute", ...]
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
import threading
import time

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Float, Integer, Unicode, default

from ..grading import OBSERVATION_MIME, VERDICTS_ENV_VAR
from .sandbox import SandboxedKernelManager, SandboxLimits, SandboxUnavailable, sandbox_problem
from .results import METADATA_KEY
from .verdicts import hidden_lines, judge, stopped_by, verdict_outputs

__all__ = ["BoundedExecute", "LimitReached", "UNSANDBOXED_NOTE"]

UNSANDBOXED_NOTE = ("**Graded without the OS sandbox.** The instructor turned the grading sandbox off "
                    "(`coursekit grade --no-sandbox`): this notebook ran with the grader's own rights.")


class LimitReached(Exception):
    """Why a notebook's execution stopped early (the text goes into the notebook)."""


class BoundedExecute(Execute):
    """nbgrader's Execute with a notebook time limit, a kernel memory limit and an output cap."""

    notebook_timeout = Integer(
        900, help="Seconds for the whole notebook; cells after it are not run (0: no limit)."
    ).tag(config=True)
    memory_limit_mb = Integer(
        6144, help="Resident memory of the kernel and its children, in MiB, before it is killed (0: no limit)."
    ).tag(config=True)
    max_output_chars = Integer(
        200_000, help="Characters of output kept per cell; the rest is dropped with a note (0: no limit)."
    ).tag(config=True)
    probe_timeout = Float(
        10.0, help="Seconds the kernel has to answer after an interrupted cell before it is killed."
    ).tag(config=True)
    poll_interval = Float(0.2, help="Seconds between memory checks.").tag(config=True)
    audit = Bool(
        False, help="Do not run cells that break coursekit.autograde.audit's rules. Off by default: the "
                    "audit is advice for students (`coursekit audit`); what protects grading is the sandbox "
                    "and verdicts decided outside the kernel, and a rule that blocks an honest answer's "
                    "idiom would cost it points."
    ).tag(config=True)
    sandbox = Bool(
        True, help="Run each kernel in the OS sandbox (coursekit.autograde.sandbox). Off: the notebook runs "
                   "with the grader's rights, and the autograded notebook and its feedback say so."
    ).tag(config=True)
    sandbox_disk_mb = Integer(512, help="Size of the kernel's writable folders (MiB each).").tag(config=True)
    sandbox_max_processes = Integer(1024, help="Processes and threads the kernel may have.").tag(config=True)
    sandbox_uid_base = Integer(61000, help="First uid of the kernels' own uids (when grading as root).").tag(config=True)
    expected_dir = Unicode(
        "", help="Where the instructor runs' records are kept (default: <course>/.coursekit/expected)."
    ).tag(config=True)
    record = Bool(
        False, help="Run the instructor's source notebook and record what its checks observe (no verdicts)."
    ).tag(config=True)
    memo = Bool(
        True, help="Reuse the lesson's experiments (coursekit.memo): the released notebook is run once "
                   "unanswered, and every later run of it reads what its seeded experiments returned "
                   "instead of training again. Off: every notebook trains everything itself."
    ).tag(config=True)
    memo_dir = Unicode(
        "", help="The memo this run uses (set by coursekit.autograde.expected, not in a config)."
    )
    memo_write = Bool(False, help="Fill memo_dir (the unanswered run), instead of reading it.")
    host_verdicts = Bool(
        True, help="Decide test cells outside the kernel (coursekit.autograde.verdicts). Off: the kernel's own "
                   "checks decide, as before the redesign — only for showing that attacks on them are real."
    ).tag(config=True)

    @default("shutdown_kernel")
    def _shutdown_kernel_default(self) -> str:
        # Once the last cell has run, nothing the kernel does is graded. A graceful shutdown of a
        # lesson kernel spends ~1.3 s of CPU in IPython's reset and in tearing down torch/TF at
        # interpreter exit (measured: 1.3 s of a 5.8 s lesson-01 notebook); kill it instead.
        return "immediate"

    # ------------------------------------------------------------------ per notebook
    def create_kernel_manager(self):
        if not self.sandbox:
            return super().create_kernel_manager()
        problem = sandbox_problem()
        if problem is not None:
            raise SandboxUnavailable(f"coursekit: {problem}")
        if not self.kernel_name:
            self.kernel_name = self.nb.metadata.get("kernelspec", {}).get("name") or "python3"
        self.km = SandboxedKernelManager(kernel_name=self.kernel_name, config=self.config)
        threads = int(os.environ.get("OMP_NUM_THREADS") or 0) or (os.cpu_count() or 1)
        if self.memo_dir:
            self.km.memo = ("write" if self.memo_write else "read", self.memo_dir)
        self.km.sandbox_limits = SandboxLimits(
            memory_mb=self.memory_limit_mb, disk_mb=self.sandbox_disk_mb, max_processes=self.sandbox_max_processes,
            cpu_seconds=self.notebook_timeout * threads, uid_base=self.sandbox_uid_base)
        return self.km

    def preprocess(self, nb, resources=None, km=None):
        # what the grader records for the instructor's report (coursekit.autograde.results) is
        # written here, by the host, and nowhere else: a submission's own copy of it is dropped
        nb.metadata.pop(METADATA_KEY, None)
        for cell in nb.cells:
            cell.metadata.pop(METADATA_KEY, None)
        if not self.sandbox:
            _state_unsandboxed(nb)
        self._stopped: str | None = None
        self._started = time.monotonic()
        self._killed_for_memory = threading.Event()
        self._watch_stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._cell_chars: dict[int, int] = {}
        self._truncated: set[int] = set()
        self._observations: dict[int, list] = {}
        self.recorded: dict[str, dict] = {}
        judging = self.host_verdicts and not self.record
        if judging:  # the memo first: the instructor run reads it too
            memo = self._memo(resources) if self.memo and self.sandbox else None
            self._expected = self._instructor_record(resources, memo)
            self.memo_dir = str(memo or "")
        else:
            self._expected = None
        self._blocked = self._audit(nb, resources) if self.audit else {}
        saved = os.environ.get(VERDICTS_ENV_VAR)
        if not self.host_verdicts and not self.record:  # the kernel's checks decide (they read this variable)
            os.environ[VERDICTS_ENV_VAR] = "kernel"
        try:
            nb, resources = super().preprocess(nb, resources, km)
            limits = ([self._stopped] if self._stopped else []) + (["output"] if self._truncated else [])
            if limits and not self.record:
                nb.metadata[METADATA_KEY] = {"limits": limits}
            return nb, resources
        finally:
            self._watch_stop.set()
            if saved is None:
                os.environ.pop(VERDICTS_ENV_VAR, None)
            else:
                os.environ[VERDICTS_ENV_VAR] = saved

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        stopped_before = self._stopped
        cell, resources = self._run_cell(cell, resources, index)
        if _is_test_cell(cell) and stopped_before is None and (self.record or self.host_verdicts):
            self._settle(cell, index, self._stopped if self._stopped != stopped_before else None)
        return cell, resources

    def _settle(self, cell, index: int, limit: str | None) -> None:
        """After a test cell ran: record its observations (instructor run) or put the grader's
        verdict in place of everything the kernel wrote into it."""
        gid = cell.metadata["nbgrader"].get("grade_id", f"cell-{index}")
        observed = self._observations.pop(index, [])
        if self.record:
            hidden = hidden_lines(cell.source)
            error = next((f"{o.get('ename')}: {o.get('evalue', '')}"[:300] for o in cell.outputs
                          if o.get("output_type") == "error"), None)
            self.recorded[gid] = {"checks": [{**o, "hidden": o.get("line") in hidden} for o in observed],
                                  "error": error}
            return
        expected = (self._expected or {}).get("cells", {}).get(gid)
        if expected is None:
            verdict_cell = [self._error(f"the instructor's run has no record of test cell {gid}; grade again "
                                        "so the record is made anew")]
            failed: tuple[str, ...] = ("no record of this cell in the instructor's run",)
        else:
            verdict = judge(expected, observed, stopped_by(cell.outputs))
            verdict_cell, failed = verdict_outputs(verdict), verdict.failed
        cell.metadata[METADATA_KEY] = {"failed": list(failed)}
        if limit is not None:
            verdict_cell.append(self._error(limit))
        cell.outputs = verdict_cell

    def _run_cell(self, cell, resources, index):
        self._start_watcher()
        if self._stopped is None and self.notebook_timeout and self._elapsed() >= self.notebook_timeout:
            self._stop(f"the notebook used up its {self.notebook_timeout} s time limit")
        if self._stopped is not None:
            self._mark_not_run(cell)
            return cell, resources
        if index in self._blocked:
            findings = self._blocked[index]
            rules = "; ".join(str(f) for f in findings)
            self.log.warning("coursekit: cell %d not run (%s)", index, rules)
            cell.outputs = [NotebookNode(
                output_type="error", ename="TamperingBlocked", evalue=rules,
                traceback=["\x1b[0;31mTamperingBlocked\x1b[0m: this cell was not run while grading. It "
                           "breaks the course's grading rules (answers may not change the grader, the "
                           "tests, builtins or the libraries the tests use):",
                           *(f"  {f}" for f in findings),
                           "Rewrite it without these, then check with: coursekit audit NOTEBOOK"])]
            cell.execution_count = None
            return cell, resources

        configured = self.timeout
        if self.notebook_timeout:
            left = max(1, int(self.notebook_timeout - self._elapsed()) + 1)
            self.timeout = left if configured is None else min(configured, left)
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            oom = getattr(self.km, "oom_killed", None)
            if self._killed_for_memory.is_set() or (oom is not None and oom()):
                reason = f"the kernel used more than {self.memory_limit_mb} MiB of memory and was stopped"
            else:
                reason = ("the kernel died while running this cell (a crash, os._exit, running out of memory "
                          "or of the notebook's CPU time)")
            self._stop(reason)
            cell.outputs.append(self._error(reason))
            return cell, resources
        except CellTimeoutError:
            # nbgrader raises on a late IOPub message; after an ignored interrupt that means a wedged kernel
            cell.outputs.append(NotebookNode(output_type="error", ename="CellTimeoutError", evalue="",
                                             traceback=["CellTimeoutError: no reply from the kernel before the timeout"]))
        finally:
            self.timeout = configured

        if self._timed_out(cell):
            if self.notebook_timeout and self._elapsed() >= self.notebook_timeout:
                self._stop(f"the notebook used up its {self.notebook_timeout} s time limit")
                self._kill_kernel()
            elif not self._responsive():
                self._stop(self._stalled_reason(configured))
                self._kill_kernel()
            if self._stopped:
                cell.outputs.append(self._error(self._stopped))
        return cell, resources

    # ------------------------------------------------------------------ output cap
    def output(self, outs, msg, display_id, cell_index):
        data = msg.get("content", {}).get("data")
        if isinstance(data, dict) and OBSERVATION_MIME in data:
            # a check's report: kept apart for the verdict, never an output (from any cell)
            if len(self._observations.setdefault(cell_index, [])) < 10_000:
                self._observations[cell_index].append(data[OBSERVATION_MIME])
            return None
        if not self.max_output_chars:
            return super().output(outs, msg, display_id, cell_index)
        size = _message_chars(msg)
        used = self._cell_chars.get(cell_index, 0) + size
        self._cell_chars[cell_index] = used
        if used <= self.max_output_chars:
            return super().output(outs, msg, display_id, cell_index)
        if cell_index not in self._truncated:
            self._truncated.add(cell_index)
            note = NotebookNode(output_type="stream", name="stdout",
                                text=f"\n[coursekit: output beyond {self.max_output_chars} characters was dropped]\n")
            outs.append(note)
            return note
        return None

    # ------------------------------------------------------------------ helpers
    def _instructor_record(self, resources, memo: Path | None = None) -> dict:
        """The instructor run's record for this notebook (made now if missing or stale)."""
        from .expected import ensure_record

        coursedir, lesson, notebook, folder = self._where(resources)
        source = Path(coursedir.root) / coursedir.source_directory / lesson / f"{notebook}.ipynb"
        if not source.is_file():
            raise RuntimeError(f"coursekit: the instructor's notebook {source} is needed to grade "
                               "(the checks are compared with its run)")
        return ensure_record(self.config, folder, source, lesson, notebook, log=self.log, memo=memo)

    def _memo(self, resources) -> Path | None:
        """The memo of this notebook's unanswered run (made with the instructor's record)."""
        from .expected import ensure_memo

        coursedir, lesson, notebook, folder = self._where(resources)
        release = Path(coursedir.root) / coursedir.release_directory / lesson / f"{notebook}.ipynb"
        return ensure_memo(self.config, folder, release, lesson, notebook, log=self.log)

    def _where(self, resources):
        """(nbgrader's course directory, lesson, notebook, where the instructor runs are kept)."""
        from nbgrader.coursedir import CourseDirectory

        info = (resources or {}).get("nbgrader", {})
        coursedir = CourseDirectory(config=self.config)
        folder = Path(self.expected_dir or Path(coursedir.root) / ".coursekit" / "expected")
        return coursedir, info.get("assignment", ""), info.get("notebook", ""), folder

    def _audit(self, nb, resources) -> dict:
        """Cells to skip, with their findings; judged against the released student version."""
        from nbgrader.coursedir import CourseDirectory

        from .audit import audit_notebook

        info = (resources or {}).get("nbgrader", {})
        coursedir = CourseDirectory(config=self.config)
        path = os.path.join(coursedir.root, coursedir.release_directory, info.get("assignment", ""),
                            info.get("notebook", "") + ".ipynb")
        import nbformat

        try:
            release = nbformat.read(path, as_version=4)
        except (OSError, ValueError) as err:
            # without it, the audit cannot tell the instructor's cells and names from the student's
            raise RuntimeError(f"coursekit: the released notebook {path} is needed to grade safely "
                               f"({err}); run `coursekit build`, or set BoundedExecute.audit = False") from None
        return audit_notebook(nb, release)

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def _stop(self, reason: str) -> None:
        if self._stopped is None:
            self._stopped = reason
            self.log.warning("coursekit: %s; the remaining cells are not run", reason)

    def _error(self, reason: str) -> NotebookNode:
        return NotebookNode(output_type="error", ename="LimitReached", evalue=reason,
                            traceback=[f"\x1b[0;31mLimitReached\x1b[0m: {reason}. Cells after this one were not run."])

    def _mark_not_run(self, cell) -> None:
        cell.outputs = [self._error(f"not run: {self._stopped}")]
        cell.execution_count = None

    @staticmethod
    def _timed_out(cell) -> bool:
        return any(o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError" for o in cell.outputs)

    def _responsive(self) -> bool:
        """After an interrupted cell: does the kernel answer an empty request in `probe_timeout` s?"""
        saved = self.timeout
        self.timeout = max(1, int(self.probe_timeout))
        try:
            msg_id = self.kc.execute("", silent=True, store_history=False)
            reply = self.wait_for_reply(msg_id)
        except Exception:  # a dead or wedged kernel: either way it cannot run the tests
            return False
        finally:
            self.timeout = saved
        return bool(reply) and reply.get("content", {}).get("status") == "ok"

    def _stalled_reason(self, cell_timeout) -> str:
        """Why a kernel that ran past the cell limit and does not answer is stopped. One that reached its
        memory limit is stalled by the OS reclaiming pages (on a loaded machine that outlasts the cell
        limit before the OOM killer acts): the student is told it was memory, not an ignored interrupt."""
        reached = getattr(self.km, "reached_memory_limit", None)
        if self._killed_for_memory.is_set() or (reached is not None and reached()):
            return (f"the kernel reached its limit of {self.memory_limit_mb} MiB of memory, stalled past the "
                    f"{cell_timeout} s cell time limit and was stopped")
        return f"this cell ran past the {cell_timeout} s cell time limit and ignored the interrupt"

    def _kernel_pid(self) -> int | None:
        provisioner = getattr(self.km, "provisioner", None)
        return getattr(provisioner, "pid", None)

    def _kill_kernel(self) -> None:
        kill_all = getattr(self.km, "kill_all", None)
        if kill_all is not None:
            kill_all()
            return
        pid = self._kernel_pid()
        if pid:
            _kill_tree(pid)

    def _start_watcher(self) -> None:
        if self._watcher is not None or not self.memory_limit_mb or getattr(self.km, "has_memory_limit", False):
            return
        pid = self._kernel_pid()
        if not pid:
            return
        self._watcher = threading.Thread(target=self._watch_memory, args=(pid,), daemon=True,
                                         name="coursekit-memory-watch")
        self._watcher.start()

    def _watch_memory(self, pid: int) -> None:
        import psutil

        limit = self.memory_limit_mb * 1024 * 1024
        try:
            kernel = psutil.Process(pid)
        except psutil.Error:
            return
        while not self._watch_stop.wait(self.poll_interval):
            try:
                procs = [kernel, *kernel.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in procs if p.is_running())
            except psutil.Error:
                return  # the kernel is gone; nbclient reports it
            if rss > limit:
                self._killed_for_memory.set()
                _kill_tree(pid)
                return


def _is_test_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def _state_unsandboxed(nb) -> None:
    """Say in the notebook itself (and so in its feedback) that it was graded without the sandbox."""
    nb.metadata.setdefault("coursekit", {})["sandbox"] = False
    if not (nb.cells and nb.cells[0].get("metadata", {}).get("coursekit_note") == "unsandboxed"):
        from nbformat.v4 import new_markdown_cell

        nb.cells.insert(0, new_markdown_cell(UNSANDBOXED_NOTE, metadata={"coursekit_note": "unsandboxed"}))


def _kill_tree(pid: int) -> None:
    import psutil

    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.Error:
        return
    for p in reversed(procs):
        try:
            os.kill(p.pid, signal.SIGKILL)
        except OSError:
            pass


def _message_chars(msg: dict) -> int:
    """Characters of text a message adds; a rich output (a figure) counts as 1000, so a cell may
    show 200 figures under the default cap but not flood the notebook with them."""
    content = msg.get("content", {})
    if "text" in content:
        return len(content["text"])
    data = content.get("data") or {}
    if any(not k.startswith("text/") for k in data):
        return 1000
    return sum(len(v) if isinstance(v, str) else len(str(v)) for v in data.values())
