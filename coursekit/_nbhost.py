"""`python -m coursekit._nbhost`: nbgrader commands in a process that coursekit keeps open.

coursekit drives nbgrader through this module instead of `python -m nbgrader`:

- `python -m coursekit._nbhost ARGS` runs one command, exactly like `python -m nbgrader ARGS`;
- `python -m coursekit._nbhost --serve` imports nbgrader at once (so the import overlaps whatever
  the caller does meanwhile), then runs one command per line of stdin, each a JSON list of
  nbgrader arguments, and answers each with `{"rc": N}` on stdout. While an `autograde` runs,
  every student whose notebooks are graded is announced at once with `{"graded": "S"}`, so
  `coursekit grade` can record that student while the next one executes. Anything nbgrader
  itself prints goes to stderr, which keeps stdout for these messages. `Host` is the caller's
  side (`coursekit grade`, `coursekit build`).

Both skip one import: jsonschema builds an RFC 3987 grammar when `rfc3987_syntax` is installed,
1.1 s of the 2.2 s it takes to import nbgrader, for format checks nbformat never asks for.
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import traceback
from collections import deque
from pathlib import Path
from typing import Any, TextIO

_messages: TextIO | None = None  # where `--serve` answers (the original stdout)
_instructor_hook: Any = None  # a post_convert_hook from the course's own config, still called
_coursedir: Any = None  # the running autograde's CourseDirectory


def skip_rfc3987_grammar() -> None:
    """Let jsonschema, imported after this, skip building its RFC 3987 grammar (see above)."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # jsonschema then leaves the 'iri' format unchecked


def _say(message: dict) -> None:
    if _messages is not None:
        _messages.write(json.dumps(message) + "\n")
        _messages.flush()


def graded(assignment: str, student: str, notebooks: list[str]) -> None:
    """nbgrader's `post_convert_hook` while `--serve` autogrades: announce the finished student."""
    if _instructor_hook is not None:
        _instructor_hook(assignment=assignment, student=student, notebooks=notebooks)
    # nbgrader passes its student glob ('*'); the student is in the submitted notebooks' path
    pattern = _coursedir.format_path(_coursedir.submitted_directory, "(?P<student>.*)", "(?P<assignment>.*)",
                                     escape=True)
    match = re.match(pattern + re.escape(os.path.sep), notebooks[0]) if notebooks else None
    if match:
        _say({"graded": match.group("student")})


def _resolve(hook: Any) -> Any:
    if isinstance(hook, str):
        module, name = hook.rsplit(".", 1)
        return getattr(importlib.import_module(module), name)
    return hook


def run(argv: list[str]) -> int:
    """Run one nbgrader command in this process; its exit status."""
    global _instructor_hook, _coursedir
    from jupyter_core.application import NoStart
    from nbgrader.apps.autogradeapp import AutogradeApp
    from nbgrader.apps.nbgraderapp import NbGraderApp

    app = NbGraderApp.instance()
    try:
        app.initialize(argv)
        if _messages is not None and isinstance(app.subapp, AutogradeApp):
            config = app.subapp.config
            _instructor_hook = _resolve(config.Autograde.get("post_convert_hook")
                                        or config.BaseConverter.get("post_convert_hook"))
            config.Autograde.post_convert_hook = graded  # read when autograde makes its converter
            _coursedir = app.subapp.coursedir
        app.start()
        return 0
    except NoStart:  # how jupyter apps say that their subcommand has run
        return 0
    except SystemExit as stop:
        code = stop.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        _instructor_hook = _coursedir = None
        if app.subapp is not None:
            type(app.subapp).clear_instance()
        NbGraderApp.clear_instance()


def _die_with_parent() -> None:
    """Linux: end this process when the `coursekit grade` that started it ends. A grade killed
    mid-class (a timeout, Ctrl-C on a hung terminal) otherwise left this host grading the rest
    of the class on its own, its kernels competing with the next run for the cores."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent was already gone before prctl
        os.kill(os.getpid(), signal.SIGTERM)


def serve() -> int:
    global _messages
    _die_with_parent()
    _messages = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever nbgrader prints goes to stderr
    sys.stdout = sys.stderr
    # the imports are the point: what the commands will need, loaded before the first one
    import nbgrader.apps.autogradeapp
    import nbgrader.apps.generateassignmentapp
    import nbgrader.apps.nbgraderapp
    import nbgrader.converters.autograde  # noqa: F401

    import coursekit.autograde.bounds
    import coursekit.autograde.restore  # noqa: F401

    for line in sys.stdin:
        if line.strip():
            _say({"rc": run(json.loads(line))})
    return 0


class CommandFailed(Exception):
    """An nbgrader command run by `Host.run_all` failed (or its process ended): its `tag`. What
    nbgrader logged is what `Host.close` returns."""

    def __init__(self, tag: Any) -> None:
        super().__init__(tag)
        self.tag = tag


class Host:
    """The caller's side of a `coursekit._nbhost --serve` process in the course folder `root`, run
    with the environment `env`: commands go in with a tag, and its messages (`{"rc"}` answers,
    `{"graded"}` announcements, `{"exit"}` when it ends) arrive on `events` as (host, message).
    `answered` pairs an `{"rc"}` with the tag of its command."""

    def __init__(self, root: Path, events: queue.Queue, env: dict) -> None:
        self.root = root
        self.events = events
        self.proc = subprocess.Popen([sys.executable, "-m", "coursekit._nbhost", "--serve"], cwd=root, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.tags: deque = deque()
        self._stderr: list[str] = []
        self._stderr_reader = threading.Thread(target=self._stderr.extend, args=(self.proc.stderr,), daemon=True)
        self._stderr_reader.start()
        threading.Thread(target=self._read_messages, args=(events,), daemon=True).start()

    def _read_messages(self, events: queue.Queue) -> None:
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            events.put((self, message))
        events.put((self, {"exit": self.proc.wait()}))

    def answered(self, message: dict):
        """The tag of the command `message` answers (None for other messages); call once per message."""
        return self.tags.popleft() if "rc" in message and self.tags else None

    def log(self) -> str:
        """What the process has logged so far."""
        return "".join(self._stderr)

    def run_all(self, commands: list[tuple[Any, list[str]]]):
        """Send every (tag, argv) command at once, then yield each tag as its command succeeds, in
        order, when this host has `events` to itself. The first failure (or the process ending)
        raises `CommandFailed` with its tag; the caller closes the host."""
        for tag, argv in commands:
            self.send(tag, *argv)
        while self.tags:
            _, message = self.events.get()
            if "exit" in message:
                raise CommandFailed(self.tags[0])
            if "rc" in message:
                tag = self.answered(message)
                if message["rc"] != 0:
                    raise CommandFailed(tag)
                yield tag

    def send(self, tag, *argv: str) -> None:
        self.tags.append(tag)
        self.proc.stdin.write(json.dumps(list(argv)) + "\n")
        self.proc.stdin.flush()

    def close(self, timeout: float = 60) -> str:
        """End the process (after the commands sent, within `timeout` s; 0: kill it now) and return
        everything it logged."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=timeout)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._stderr_reader.join(timeout=10)
        return self.log()


def main() -> int:
    skip_rfc3987_grammar()
    if sys.argv[1:] == ["--serve"]:
        return serve()
    from nbgrader.apps.nbgraderapp import main as nbgrader_main

    sys.argv[0] = "nbgrader"
    nbgrader_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
