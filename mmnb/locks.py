"""The claim on a run folder: an exclusive `flock` on `<folder>/.claim`.

Whoever holds the lock runs the run and is the only writer in its folder. The operating
system drops the lock when the processes holding it die (however they die), so a crash
never leaves a stale claim; the holder's host and pid are written into the file for
messages. Nothing is followed through symbolic links, and a claim file with other hard
links is not used (writing it would write the other files). A lock held by a process
that is not an mmnb run (the file does not name a live holder on this host) is named as
such, with the process that holds it where the system tells (`/proc/locks` on Linux).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import time
from pathlib import Path
from typing import Any

__all__ = ["CLAIM", "Claim", "claim_holder", "describe_holder", "holder", "safe_folder"]

CLAIM = ".claim"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def safe_folder(folder: str | Path) -> Path:
    """Create the run folder if needed; refuse one that is a symbolic link or not a folder."""
    folder = Path(folder)
    if folder.is_symlink():
        raise ValueError(f"run folder {folder} is a symbolic link; links are not followed")
    folder.mkdir(parents=True, exist_ok=True)
    if not stat.S_ISDIR(os.lstat(folder).st_mode):
        raise ValueError(f"run folder {folder} is not a folder")
    return folder


def holder() -> dict[str, Any]:
    """This process: host, pid and the time, as written into claims and records."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "since": round(time.time(), 3)}


class Claim:
    """An exclusive claim on a run folder: a `flock` on `<folder>/.claim`."""

    def __init__(self, fd: int, folder: str | Path) -> None:
        self.fd, self.folder = fd, Path(folder)

    @classmethod
    def acquire(cls, folder: str | Path, patience: float = 0.2) -> Claim | None:
        """Claim `folder` (created if needed); None if another process holds it.

        A lock held for less than `patience` seconds (`collect` peeking) does not count.
        """
        folder = safe_folder(folder)
        path = folder / CLAIM
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as err:
            why = "is a symbolic link" if err.errno == errno.ELOOP else err.strerror
            raise ValueError(f"cannot claim the run: {path} {why}") from err
        if os.fstat(fd).st_nlink > 1:
            os.close(fd)
            raise ValueError(
                f"cannot claim the run: {path} has other hard links; it is not written "
                "through them (remove it)"
            )
        deadline = time.monotonic() + patience
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        os.close(fd)
                        return None
                    time.sleep(0.02)
        except OSError as err:
            os.close(fd)
            raise ValueError(
                f"cannot lock {path} ({err.strerror}): --out must be on a file system "
                "with file locks"
            ) from err
        claim = cls(fd, folder)
        claim.note()
        return claim

    def note(self) -> None:
        """Write this process's host and pid into the claim file."""
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(holder()).encode(), 0)

    def release(self) -> None:
        """Empty the claim file and drop this process's hold of the lock."""
        if self.fd < 0:
            return
        try:
            os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)
            self.fd = -1


def _lock_owner(fd: int) -> int | None:
    """The pid that took the flock on the open file `fd` (Linux: from /proc/locks)."""
    try:
        inode = os.fstat(fd).st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a waiter, not the holder
            continue
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            return int(fields[4]) if fields[4].isdigit() else None
    return None


def _command(pid: int | None) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(raw.decode(errors="replace").split("\0")).strip()[:120] or "?"


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unrelated(fd: int, holder: dict[str, Any] | None) -> dict[str, Any] | None:
    """The lock's owner, when the claim file does not name a live mmnb holder here."""
    here = holder and holder.get("host") == socket.gethostname()
    if holder and (not here or _alive(holder.get("pid"))):
        return None  # a live holder, or one on another host (which cannot be checked)
    owner = _lock_owner(fd)
    return {"unrelated": True, "pid": owner, "command": _command(owner), "named": holder}


def claim_holder(folder: str | Path) -> dict[str, Any] | None:
    """Who holds the run's claim ({host, pid, since}), or None when nobody does; for a
    lock held by a process that is not an mmnb run, {unrelated, pid, command}."""
    path = Path(folder) / CLAIM
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # held
            text = os.pread(fd, 4096, 0).decode(errors="replace")
            try:
                holder = json.loads(text)
            except ValueError:
                holder = None
            holder = holder if isinstance(holder, dict) and "pid" in holder else None
            if holder is None:
                time.sleep(0.05)  # an mmnb holder writes its name just after locking
                try:
                    holder = json.loads(os.pread(fd, 4096, 0).decode(errors="replace"))
                except ValueError:
                    holder = None
                holder = holder if isinstance(holder, dict) and "pid" in holder else None
            return _unrelated(fd, holder) or holder
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def describe_holder(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process"
    if holder.get("unrelated"):
        who = f"pid {holder['pid']} ({holder['command']})" if holder.get("pid") else "a process"
        named = holder.get("named")
        gone = f"; the pid {named.get('pid')} it names is gone" if named else ""
        return f"an unrelated process, not an mmnb run: {who}{gone}"
    return f"pid {holder.get('pid')} on {holder.get('host')}"
