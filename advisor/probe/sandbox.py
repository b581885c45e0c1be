"""Containment for `--run`, applied in the child between fork and exec (single-threaded there).

- Network: a new user and network namespace (`unshare(CLONE_NEWUSER | CLONE_NEWNET)`), whose
  only interface is a loopback that is down: the script cannot reach anything.
- Processes: the parent becomes a child subreaper, so a process the script starts that leaves
  its process group (`setsid`) and outlives its parent is re-parented to us, not to init; every
  such process, and all of the script's descendants, are killed when the script ends.
- Files: Landlock (Linux >= 5.13) lets the script read everything but create, change or delete
  files only beneath its temporary folder and /dev (for /dev/null and /dev/shm); the user's
  tree is never written, even through an absolute path.

Where the system refuses one of them the run goes on without it, and the report says so: the
child writes what it obtained to a small JSON file that the parent reads.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import platform
from pathlib import Path

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
# x86_64 and aarch64 share these numbers
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
# every access that changes the file system (reads and execution stay allowed everywhere)
WRITE_ACCESS = {1: 0b1_1111_1111_0010, 2: 0b11_1111_1111_0010, 3: 0b111_1111_1111_0010}


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def cut_network() -> str:
    """A fresh network namespace (inside a user namespace, so no privilege is needed)."""
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        return f"network not cut off: unshare refused ({os.strerror(ctypes.get_errno())})"
    try:  # keep our own uid and gid inside, so files keep their owner
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    except OSError as error:
        return f"network cut off, but the user mapping failed ({error})"
    return "network cut off"


def confine_writes(*writable: Path) -> str:
    """Landlock: writes only beneath `writable`."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "aarch64"):
        return "file writes not confined: Landlock needs Linux on x86_64 or aarch64"
    libc = _libc()
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    abi = syscall(
        SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), LANDLOCK_CREATE_RULESET_VERSION
    )
    if abi < 1:
        return "file writes not confined: this kernel has no Landlock"
    handled = WRITE_ACCESS[min(abi, 3)]
    attr = _RulesetAttr(handled)
    ruleset = syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    if ruleset < 0:
        return f"file writes not confined: {os.strerror(ctypes.get_errno())}"
    try:
        for folder in writable:
            fd = os.open(folder, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneathAttr(handled, fd)
                if syscall(
                    SYS_LANDLOCK_ADD_RULE,
                    ruleset,
                    LANDLOCK_RULE_PATH_BENEATH,
                    ctypes.byref(rule),
                    0,
                ):
                    return f"file writes not confined: {os.strerror(ctypes.get_errno())}"
            finally:
                os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return "file writes not confined: no_new_privs refused"
        if syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            return f"file writes not confined: {os.strerror(ctypes.get_errno())}"
    finally:
        os.close(ruleset)
    return "file writes confined to the run's folder"


def isolate(root: Path, report: Path) -> None:
    """Both, in the child; what was obtained goes to `report` (JSON) for the parent."""
    outcome = [cut_network()]
    with contextlib.suppress(OSError):
        report.write_text(json.dumps(outcome))  # before the writes are confined (it is in root)
    outcome.append(confine_writes(root, Path("/dev")))
    with contextlib.suppress(OSError):
        report.write_text(json.dumps(outcome))


def read_report(report: Path) -> list[str]:
    try:
        found = json.loads(report.read_text())
    except (OSError, ValueError):
        return ["the sandbox did not report (no containment beyond the limits)"]
    return [str(x) for x in found] if isinstance(found, list) else []


class Reaper:
    """While open, orphans of the script's process tree come back to this process (a child
    subreaper); `stop_all` kills the script's descendants and every adopted orphan, and reaps
    them, so nothing the script started outlives the run."""

    def __init__(self) -> None:
        self.previous = ctypes.c_int(0)
        self.held = False
        self.baseline: set[int] = set()
        self.refusal: str | None = None

    def __enter__(self) -> Reaper:
        libc = _libc()
        if platform.system() != "Linux":
            self.refusal = "processes that leave the script's group are not stopped (not Linux)"
            return self
        libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(self.previous), 0, 0, 0)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            self.refusal = "processes that leave the script's group are not stopped (prctl refused)"
            return self
        self.held = True
        self.baseline = set(_children(_parents(), os.getpid()))
        return self

    def __exit__(self, *_: object) -> None:
        if self.held:
            _libc().prctl(PR_SET_CHILD_SUBREAPER, self.previous.value, 0, 0, 0)

    def stop_all(self, script: int) -> int:
        """Kill the script's process tree and the orphans it left with us; how many."""
        killed: set[int] = set()
        for _ in range(100):  # each round catches what the last one's kills re-parented
            parents = _parents()
            roots = {script} if script in parents else set()
            if self.held:
                roots |= set(_children(parents, os.getpid())) - self.baseline - {script}
            victims = set()
            for root in roots:
                victims.add(root)
                victims.update(_descendants(parents, root))
            victims -= killed | {os.getpid()}
            if not victims:
                break
            for pid in victims:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, 9)
            killed |= victims
            for pid in victims:  # the adopted ones are our children now: reap them
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, 0)
        return len(killed)


def _parents() -> dict[int, int]:
    """pid -> parent pid, for every process we can see."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields and fields[0] != b"Z":  # a zombie is already dead (its parent reaps it)
            found[int(entry.name)] = int(fields[1])
    return found


def _children(parents: dict[int, int], pid: int) -> list[int]:
    return [child for child, parent in parents.items() if parent == pid]


def _descendants(parents: dict[int, int], pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        frontier = [c for p in frontier for c in _children(parents, p)]
        found.extend(frontier)
    return found
