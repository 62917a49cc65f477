"""One writer per output: an exclusive lock on a file beside the output, held for the whole run.

POSIX record locks (`fcntl.lockf`) rather than `flock`: they work on NFS (through the lock
manager), where SLURM clusters keep their outputs, and the kernel drops them when the holder
dies, so a crash or SIGKILL never leaves a stale lock. The lock file names its holder (pid, host,
start time, command) so that a refused run can say who writes.

Two subtleties of POSIX locks shape this module:
- they belong to the process, and closing *any* descriptor of the file drops them: the file is
  opened once per process and never read through a second descriptor here (a table of the locks
  this process holds answers in-process questions);
- the holder deletes the file when it ends, so an acquirer that opened the old file checks,
  once locked, that the path still names the file it locked, and starts over if not.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ignite.errors import UsageError

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".ignite.lock"
_HELD: dict[str, OutputLock] = {}  # lock file path -> the lock this process holds on it


class OutputBusy(UsageError):
    """Another process writes this output (exit 2)."""


def lock_path_for(target: Path) -> Path:
    """The lock file of an output (file or folder), by its real path: two runs naming it through
    a symlink or a relative path find the same lock."""
    real = Path(os.path.realpath(target))
    return real.with_name(real.name + LOCK_SUFFIX)


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    started: str
    command: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.started}"


def _read_holder(path: Path) -> Holder | None:
    """The holder written in a lock file by another process; None while it is being written."""
    try:
        data = json.loads(path.read_bytes() or b"null")
        return Holder(int(data["pid"]), str(data["host"]), str(data["started"]), str(data["command"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class OutputLock:
    """An exclusive lock on `target` (an output, --errors file or --index folder) for this process.
    `acquire` raises OutputBusy naming the holder, or waits for it with `wait=True`."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.path = lock_path_for(target)
        self._fd: int | None = None

    def acquire(self, wait: bool = False) -> None:
        key = str(self.path)
        if key in _HELD:
            raise OutputBusy(f"{self.target} is already being written by this process")
        announced = False
        while True:
            fd = self._open()
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    raise UsageError(f"cannot lock {self.path}: {exc.strerror}; the output folder must allow "
                                     f"file locks (on NFS, the lock manager must run)") from None
                holder = self._holder()
                if not wait:
                    raise OutputBusy(f"{self.target} is being written by {holder}; wait for it to end "
                                     f"(or pass --wait to wait for it)") from None
                if not announced:
                    log.info("%s is being written by %s: waiting for it to end (--wait)", self.target, holder)
                    announced = True
                fd = self._open()
                fcntl.lockf(fd, fcntl.LOCK_EX)  # blocks; a signal's handler ends the wait
            if self._still_named(fd):
                break
            os.close(fd)  # the holder deleted the file we locked as it ended: lock the new one
        self._fd = fd
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": shlex.join(sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)
        _HELD[key] = self

    def release(self) -> None:
        """Delete the lock file while still holding it, then drop the lock."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass  # gone or unwritable: the next holder takes over the file as it is
        os.close(self._fd)  # closing drops the lock
        self._fd = None
        _HELD.pop(str(self.path), None)

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise UsageError(f"cannot create {self.path} beside the output ({exc.strerror}); the output "
                             f"folder {self.path.parent} must be a writable folder on a real filesystem") from None

    def _still_named(self, fd: int) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino)

    def _holder(self) -> str:
        # The holder writes its name right after locking: give it a moment before saying "unknown".
        for _ in range(50):
            holder = _read_holder(self.path)
            if holder is not None:
                return holder.describe()
            time.sleep(0.01)
        return "another process (it has not named itself in " + str(self.path) + ")"


def lock_targets(output: Path, errors: Path | None, index: Path | None) -> list[Path]:
    """What a run of `ignite embed` locks: its output, its --errors file and its --index folder.
    Their folders must exist (checked here, since the lock files are created in them)."""
    if not output.parent.exists():
        raise UsageError(f"output folder {output.parent} does not exist; create it first (mkdir -p {output.parent})")
    if errors is not None and not errors.parent.exists():
        raise UsageError(f"--errors folder {errors.parent} does not exist; create it first")
    targets = [output] + ([errors] if errors is not None else [])
    if index is not None:
        index.parent.mkdir(parents=True, exist_ok=True)
        targets.append(index)
    return targets


class OutputLocks:
    """The locks of one run: the output, and --errors and --index when given. Taken in a fixed
    order (by lock path) so that two waiting runs cannot deadlock; released together."""

    def __init__(self, targets: list[Path]) -> None:
        unique = {lock_path_for(t): t for t in targets}
        self.locks = [OutputLock(unique[p]) for p in sorted(unique)]

    def acquire(self, wait: bool = False) -> OutputLocks:
        try:
            for lock in self.locks:
                lock.acquire(wait)
        except BaseException:  # a signal too: give back the locks taken so far, then re-raise
            self.release()
            raise
        return self

    def release(self) -> None:
        for lock in reversed(self.locks):
            lock.release()

    def __enter__(self) -> OutputLocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
