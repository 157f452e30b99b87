"""The OS sandbox every graded kernel runs in.

A student's notebook runs arbitrary Python, so nothing inside its kernel can be trusted to keep it
from the rest of the course. The line is drawn by the operating system instead:

- **bubblewrap** (`bwrap`, Debian package `bubblewrap`) gives the kernel new mount, PID, network,
  IPC and UTS namespaces: no network; a working folder (`/home/student`) that starts empty, is
  size-capped and, with `/tmp`, the only writable place; read-only views of the system libraries,
  of this Python environment and of the `coursekit` package, and nothing else of the course — no
  `solutions/`, gradebook, `submitted/`, `autograded/`, `feedback/`, released notebooks, not even
  the notebook being graded or files handed in beside it. The environment is cleared: only
  variables that steer thread counts and the run size pass (never a gradebook URL).
- **its own unprivileged uid** per concurrent kernel (when grading runs as root, as CI does): uid
  `uid_base + slot`, a slot taken by a lock file, so a kernel's process limit (`RLIMIT_NPROC`)
  counts its own processes only and no two kernels share files or signals.
- **a cgroup** (v1 or v2, whichever this machine has writable) caps the kernel's memory and process
  count: the kernel is stopped by the OS at the limit, the same way under any load, and the cgroup's
  OOM counter says afterwards that memory was the reason. Without a writable cgroup the memory limit
  falls back to `BoundedExecute`'s watcher (`coursekit doctor` says which).
- rlimits: no core files, a cap on the size of any file the kernel writes, and a cap on the CPU
  time of the whole notebook (the OS stops the kernel there, however loaded the machine is).

The kernel talks to the grader over ZeroMQ's `ipc` transport (Unix sockets in a private folder
bound into the sandbox), since a kernel without a network cannot reach TCP on the host's loopback.

`sandbox_problem()` says in one line why the sandbox cannot run here (not Linux, no `bwrap`, no
user namespaces); grading stops with that line unless the instructor opts out explicitly.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

__all__ = ["SandboxLimits", "SandboxedKernelManager", "SandboxUnavailable", "sandbox_problem", "sandbox_report"]

INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)"
# What the kernel's environment may keep: thread counts, the run size, framework log levels.
PASSED_ENV = ("NBGRADER_EXECUTION", "COURSEKIT_VERDICTS", "COURSEKIT_RUN_SIZE", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
              "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "TF_CPP_MIN_LOG_LEVEL",
              "KERAS_BACKEND", "PYTHONHASHSEED", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CUDA_VISIBLE_DEVICES",
              "LANG", "LC_ALL", "TZ")
# The few files of /etc that Python, numpy, matplotlib and the frameworks read.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "fonts", "localtime", "mime.types", "nsswitch.conf")
HOME = "/home/student"
SLOTS = 64


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start on this machine; the message says why and what to do."""


@dataclass(frozen=True)
class SandboxLimits:
    """What one sandboxed kernel may use. 0 means no limit (for memory: the watcher's fallback)."""

    memory_mb: int = 6144
    disk_mb: int = 512
    max_processes: int = 1024
    max_file_mb: int = 256
    cpu_seconds: int = 0
    uid_base: int = 61000


def _bwrap() -> str | None:
    return shutil.which("bwrap")


def sandbox_problem() -> str | None:
    """None if sandboxed kernels can start here, else one line saying why not and the fix."""
    if not sys.platform.startswith("linux"):
        return (f"the grading sandbox needs Linux (bubblewrap and user namespaces); this is {sys.platform}: "
                "grade on a Linux machine or container, or pass --no-sandbox to grade unprotected")
    bwrap = _bwrap()
    if bwrap is None:
        return f"the grading sandbox needs bubblewrap, which is not installed: {INSTALL_HINT}"
    root = os.geteuid() == 0
    probe = [bwrap, *_namespaces(root), "--die-with-parent", *_system_binds(), "--proc", "/proc", "--dev", "/dev"]
    if root:
        uid = str(SandboxLimits().uid_base)
        probe += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", "setpriv", f"--reuid={uid}",
                  f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
    probe += ["--", "/bin/sh", "-c", "exit 0"]
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bubblewrap could not start a sandbox ({err})"
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        return (f"bubblewrap cannot create a sandbox here ({why}); user namespaces may be off "
                "(sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone, or a container "
                "without them): enable them, or pass --no-sandbox to grade unprotected")
    return None


def _system_binds() -> list[str]:
    """Read-only views of the system: /usr, the top-level links into it, a few files of /etc."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    args += ["--perms", "0755", "--dir", "/etc"]  # bwrap would make it root-only
    for name in ETC_FILES:
        path = os.path.join("/etc", name)
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


# Where the kernel may write: empty, size-capped file systems of its own.
def _scratch_mounts(limits: SandboxLimits) -> list[str]:
    return ["--proc", "/proc", "--dev", "/dev", "--ro-bind", "/sys", "/sys",
            "--perms", "1777", "--size", str(64 * 2**20), "--tmpfs", "/dev/shm",
            "--perms", "1777", "--size", str(limits.disk_mb * 2**20), "--tmpfs", "/tmp",
            "--perms", "0777", "--size", str(limits.disk_mb * 2**20), "--tmpfs", HOME]


SCRATCH = ("/proc", "/dev", "/sys", "/dev/shm", "/tmp", HOME)


def mount_args(limits: SandboxLimits, runtime: str) -> list[str]:
    """Every mount of the sandbox, in bwrap's order: a later mount covers an earlier one, so the
    scratch file systems come first and the read-only views go on top of them (a course or a venv
    under /tmp stays visible: a tmpfs mounted after it hid the Python install and killed the kernel)."""
    return [*_scratch_mounts(limits), *_system_binds(), *_python_binds(),
            "--bind", runtime, runtime, *_gpu_binds()]


def _coursekit_dir() -> str:
    import coursekit

    return os.path.realpath(os.path.dirname(coursekit.__file__))


def _python_binds() -> list[str]:
    """This interpreter and its packages, and coursekit's own folder (an editable install points into
    the course tree, which must stay out of sight), all read-only."""
    dirs = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    dirs.add(_coursekit_dir())
    # the path the venv's python was started by may be a link into the base prefix
    dirs.add(os.path.realpath(os.path.dirname(sys.executable)))
    if os.path.realpath(sys.prefix) != sys.prefix:
        dirs.add(sys.prefix)
    outer = sorted(d for d in dirs if not any(d != o and d.startswith(o + os.sep) for o in dirs))
    args = _traversable_parents(outer)
    for d in outer:
        args += ["--ro-bind", d, d]
    return args


def _traversable_parents(dirs: list[str]) -> list[str]:
    """bwrap makes the folders above a mount point itself, for root only: these arguments make them
    traversable for the kernel's uid (not the scratch mounts themselves: they exist already, with
    their own permissions)."""
    parents = sorted({str(p) for d in dirs for p in Path(d).parents if str(p) not in ("/", *SCRATCH)})
    return [arg for p in parents for arg in ("--perms", "0755", "--dir", p)]


def memo_args(mode: str, folder: str) -> list[str]:
    """The experiments memo at its own path: read-only when grading (a submission cannot plant a
    result for the next student), writable for the unanswered notebook's run that fills it. The
    folders above it are made traversable (bwrap would make them root-only), nothing more of them
    is shown."""
    folder = os.path.realpath(folder)
    return [*_traversable_parents([folder]), "--ro-bind" if mode == "read" else "--bind", folder, folder,
            "--setenv", "COURSEKIT_MEMO", f"{mode}:{folder}"]


# ---------------------------------------------------------------- cgroups
class _Cgroup:
    """A cgroup of its own for one kernel (v2 if this process's cgroup accepts children, else the v1
    memory and pids hierarchies); `None` from `create` where neither is writable."""

    def __init__(self, dirs: list[Path], v2: bool) -> None:
        self.dirs = dirs
        self.v2 = v2

    @classmethod
    def create(cls, name: str, limits: SandboxLimits) -> _Cgroup | None:
        try:
            lines = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return None
        where = {}
        for line in lines:
            _, controllers, path = line.split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                where[c] = path
        v2_root = Path("/sys/fs/cgroup")
        if "" in where and (v2_root / "cgroup.controllers").is_file():
            group = cls._make([v2_root / where[""].lstrip("/") / name], v2=True)
            if group and group._write("memory.max", limits.memory_mb * 2**20 if limits.memory_mb else "max") \
                    and group._write("pids.max", limits.max_processes or "max"):
                group._write("memory.swap.max", 0)
                return group
            if group:
                group.remove()
        if "memory" in where:
            dirs = [Path("/sys/fs/cgroup/memory") / where["memory"].lstrip("/") / name]
            if "pids" in where and Path("/sys/fs/cgroup/pids").is_dir():
                dirs.append(Path("/sys/fs/cgroup/pids") / where["pids"].lstrip("/") / name)
            group = cls._make(dirs, v2=False)
            if group and group._write("memory.limit_in_bytes", limits.memory_mb * 2**20 if limits.memory_mb else -1):
                group._write("memory.memsw.limit_in_bytes", limits.memory_mb * 2**20 if limits.memory_mb else -1)
                group._write("pids.max", limits.max_processes or "max")
                return group
            if group:
                group.remove()
        return None

    @classmethod
    def _make(cls, dirs: list[Path], v2: bool) -> _Cgroup | None:
        made = []
        for d in dirs:
            try:
                d.mkdir()
                made.append(d)
            except OSError:
                if d is dirs[0]:
                    return None
        return cls(made, v2)

    def _write(self, name: str, value) -> bool:
        for d in self.dirs:
            if (d / name).exists():
                try:
                    (d / name).write_text(str(value))
                    return True
                except OSError:
                    return False
        return False

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> list[int]:
        out: set[int] = set()
        for d in self.dirs:
            try:
                out.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return sorted(out)

    def _count(self, name: str, key: str | None = None) -> int:
        """A counter of this group's memory controller: the number in file `name`, or the value of
        line `key` in a flat-keyed file such as memory.events; 0 when the file or line is absent."""
        try:
            text = (self.dirs[0] / name).read_text()
        except OSError:
            return 0
        if key is None:
            return int(text) if text.strip().isdigit() else 0
        for line in text.splitlines():
            k, _, value = line.partition(" ")
            if k == key and value.strip().isdigit():
                return int(value)
        return 0

    def oom_killed(self) -> bool:
        """Whether the OS stopped a process of this group for memory."""
        if self._count("memory.events" if self.v2 else "memory.oom_control", "oom_kill") > 0:
            return True
        # old kernels have no oom_kill line: the limit was hit and the process is gone
        return not self.v2 and self._count("memory.failcnt") > 0 and not self.pids()

    def reached_memory_limit(self) -> bool:
        """Whether the group's memory use has touched its limit. Near the limit the OS reclaims pages
        before it kills, and a kernel doing that can stall for longer than a cell's time limit, so a
        stalled kernel that reached the limit was stopped by its memory use, not by its CPU time."""
        return (self._count("memory.events", "max") if self.v2 else self._count("memory.failcnt")) > 0

    def kill(self) -> None:
        for _ in range(5):  # a process may fork while we kill: repeat until the group is empty
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def remove(self) -> None:
        self.kill()
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # processes still exiting
                    import time

                    time.sleep(0.05)


# ---------------------------------------------------------------- uid slots
def _take_slot() -> tuple[int, object] | tuple[None, None]:
    """A free slot number, held by an exclusive lock on its file until the handle is closed."""
    folder = Path(tempfile.gettempdir()) / "coursekit-sandbox-slots"
    folder.mkdir(mode=0o755, exist_ok=True)
    for slot in range(SLOTS):
        handle = open(folder / f"{slot}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return slot, handle
    return None, None


def _cleanup(runtime: str, cgroup: _Cgroup | None, slot_handle) -> None:
    if cgroup is not None:
        cgroup.remove()
    shutil.rmtree(runtime, ignore_errors=True)
    if slot_handle is not None:
        slot_handle.close()


class SandboxedKernelManager(AsyncKernelManager):
    """jupyter_client's kernel manager, launching the kernel inside the sandbox described above.

    Set `sandbox_limits` before `start_kernel`. `oom_killed()` and `kill_all()` serve the bounds."""

    sandbox_limits = SandboxLimits()
    # ("read" | "write", folder): the experiments memo (coursekit.memo) the kernel sees, read-only
    # when grading students; writable only for the run of the unanswered release notebook
    memo: tuple[str, str] | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._runtime = tempfile.mkdtemp(prefix="coursekit-kernel-")
        self.transport = "ipc"
        self.connection_file = os.path.join(self._runtime, "kernel.json")
        self.ip = os.path.join(self._runtime, "kernel-ipc")
        self._cgroup: _Cgroup | None = None
        self._slot_handle = None
        self._uid: int | None = None
        self._finalizer = weakref.finalize(self, _cleanup, self._runtime, None, None)

    # ---------------------------------------------------------------- launch
    async def _async_pre_start_kernel(self, **kw):
        # An interrupt as a signal to the kernel's process group would reach bwrap itself, which dies
        # of it and takes the kernel along; ipykernel's interrupt_request message (control channel)
        # makes the kernel signal itself instead, inside its own PID namespace.
        self.kernel_spec.interrupt_mode = "message"
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        inner = super().format_kernel_cmd(extra_arguments)
        limits = self.sandbox_limits
        if self._uid is None and os.geteuid() == 0:
            slot, self._slot_handle = _take_slot()
            if slot is None:
                raise SandboxUnavailable(f"all {SLOTS} sandbox slots are in use; grade with fewer --jobs")
            self._uid = limits.uid_base + slot
        if self._cgroup is None:
            self._cgroup = _Cgroup.create(os.path.basename(self._runtime), limits)
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _cleanup, self._runtime, self._cgroup, self._slot_handle)
        if self._uid is not None:  # the kernel's own uid owns its sockets' folder and reads its key
            os.chown(self._runtime, self._uid, self._uid)
            os.chown(self.connection_file, self._uid, self._uid)
        os.chmod(self._runtime, 0o700)

        env = self._launch_args.get("env") or os.environ
        bwrap = [_bwrap() or "bwrap", *_namespaces(self._uid is not None), "--die-with-parent", "--clearenv",
                 *mount_args(limits, self._runtime), "--chdir", HOME,
                 "--setenv", "HOME", HOME, "--setenv", "USER", "student", "--setenv", "TMPDIR", "/tmp",
                 "--setenv", "PATH", f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
                 "--setenv", "MPLCONFIGDIR", f"{HOME}/.config/matplotlib",
                 "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
                 # the kernel imports the grader's own coursekit (an editable install or a checkout on
                 # PYTHONPATH): its folder is the only thing of its parent that the sandbox shows
                 "--setenv", "PYTHONPATH", os.path.dirname(_coursekit_dir())]
        for name in PASSED_ENV:
            if env.get(name):
                bwrap += ["--setenv", name, env[name]]
        if self.memo is not None:
            mode, folder = self.memo
            if mode == "write" and self._uid is not None:
                os.chown(folder, self._uid, self._uid)
            bwrap += memo_args(mode, folder)
        rlimits = ["prlimit", "--core=0", f"--fsize={limits.max_file_mb * 2**20}"]
        if limits.cpu_seconds:  # CPU time, unlike the wall clock, does not depend on the machine's load
            rlimits.append(f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 5}")
        if limits.max_processes:
            rlimits.append(f"--nproc={limits.max_processes}")
        drop: list[str] = []
        if self._uid is not None:
            # bwrap sets the sandbox up as root (it must read the Python install wherever it is, e.g.
            # under /root), then the kernel becomes the slot's uid with no capabilities left
            bwrap += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
            drop = ["setpriv", f"--reuid={self._uid}", f"--regid={self._uid}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--"]
        # The shell puts itself in the cgroup, sends the kernel's own stdout/stderr (C-level writes)
        # to a log in the runtime folder instead of the grader's, then becomes the sandbox.
        log = os.path.join(self._runtime, "kernel.log")
        joins = " ".join(f'&& echo $$ > "{p}"' for p in (self._cgroup.procs_files if self._cgroup else []))
        script = f'exec >"{log}" 2>&1 {joins} && exec "$@"'
        return ["/bin/sh", "-c", script, "coursekit-sandbox", *rlimits, "--", *bwrap, "--", *drop, *inner]

    # ---------------------------------------------------------------- limits and clean-up
    def oom_killed(self) -> bool:
        """Whether the OS stopped the kernel for using more memory than its limit."""
        return bool(self._cgroup and self._cgroup.oom_killed())

    def reached_memory_limit(self) -> bool:
        """Whether the kernel's memory use touched its limit (see `_Cgroup.reached_memory_limit`)."""
        return bool(self._cgroup and self.sandbox_limits.memory_mb and self._cgroup.reached_memory_limit())

    @property
    def has_memory_limit(self) -> bool:
        """Whether the OS enforces the memory limit (else BoundedExecute's watcher must)."""
        return self._cgroup is not None and bool(self.sandbox_limits.memory_mb)

    def kill_all(self) -> None:
        """SIGKILL every process of the kernel (its cgroup, or the launched process tree)."""
        if self._cgroup is not None:
            self._cgroup.kill()
        provisioner = getattr(self, "provisioner", None)
        pid = getattr(provisioner, "pid", None)
        if pid:
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            except OSError:
                pass

    def kernel_log(self, limit: int = 2000) -> str:
        """The start of what the kernel process wrote to its own stdout/stderr."""
        try:
            with open(os.path.join(self._runtime, "kernel.log"), errors="replace") as f:
                return f.read(limit)
        except OSError:
            return ""

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            self._finalizer()


def _namespaces(as_root: bool) -> list[str]:
    """Every namespace but the user one when bwrap runs as root (the kernel then drops to its own
    uid); unprivileged, bwrap needs a user namespace for the rest."""
    common = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    return common if as_root else ["--unshare-user", *common]


def _gpu_binds() -> list[str]:
    """NVIDIA device files, so a GPU grader's kernels can use the GPU."""
    args: list[str] = []
    for name in sorted(os.listdir("/dev")) if os.path.isdir("/dev") else []:
        if name.startswith("nvidia"):
            args += ["--dev-bind", f"/dev/{name}", f"/dev/{name}"]
    return args


def sandbox_report() -> list[tuple[str, bool, str]]:
    """What `coursekit doctor` prints about the sandbox: (what, ok, detail) rows."""
    problem = sandbox_problem()
    rows = [("grading sandbox (bubblewrap)", problem is None, problem or f"{_bwrap()} starts sandboxes")]
    if problem is None:
        if os.geteuid() == 0:
            rows.append(("kernel uids", True, f"one per kernel from {SandboxLimits().uid_base} (grading as root)"))
        else:
            rows.append(("kernel uids", True, "kernels run as your own uid (grade as root for one uid per kernel)"))
        group = _Cgroup.create(f"coursekit-doctor-{os.getpid()}", SandboxLimits())
        if group is not None:
            rows.append(("memory and process limits", True, "enforced by a cgroup " + ("v2" if group.v2 else "v1")))
            group.remove()
        else:
            rows.append(("memory and process limits", True,
                         "no writable cgroup: memory is watched by the grader, processes capped by RLIMIT_NPROC"))
    return rows
