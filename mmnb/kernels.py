"""A run's kernel: its whole process group ends with it, and a per-run time limit.

Jupyter starts every kernel in a new session, so the kernel and whatever the notebook
starts (a data loader, a shell command) share one process group, whose id is the
kernel's pid. `KernelWatch` learns that id when the kernel starts (through the kernel
manager papermill uses), kills the whole group when the run ends however it ends, and,
with a time limit, kills it when the limit passes (the run then fails as timed out).
The group id is also recorded in `run.json`, so that a sweep can end the group when the
runner itself was killed (`kill -9`, out of memory). A process that leaves the group on
purpose (`setsid`) escapes; nothing else does. Imports nothing heavy at the top.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["KernelWatch", "check_kernel", "kill_group", "stop_kernels"]


def kill_group(pgid: Any) -> None:
    """SIGKILL the process group `pgid` (never this process's own group)."""
    if not isinstance(pgid, int) or isinstance(pgid, bool) or pgid <= 1:
        return
    if pgid == os.getpgrp():
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class KernelWatch:
    """Watches the kernel of one run: records its group, enforces `timeout` seconds."""

    def __init__(self, timeout: float | None, on_start: Callable[[int], None]) -> None:
        self.timeout, self.on_start = timeout, on_start
        self.pgid: int | None = None
        self.timed_out = False
        self._over = threading.Event()

    def manager_class(self) -> type:
        """A kernel manager class that tells this watch the kernel's process group."""
        from jupyter_client.manager import AsyncKernelManager

        watch = self

        class RunKernelManager(AsyncKernelManager):
            async def _async_post_start_kernel(self, **kw: Any) -> None:
                await super()._async_post_start_kernel(**kw)
                provisioner = self.provisioner
                pid = getattr(provisioner, "pgid", None) or getattr(provisioner, "pid", None)
                if pid:
                    watch.started(int(pid))

        return RunKernelManager

    def started(self, pgid: int) -> None:
        self.pgid = pgid
        with contextlib.suppress(Exception):  # a record that cannot be written: the run goes on
            self.on_start(pgid)
        if self.timed_out:
            kill_group(pgid)

    def start(self) -> None:
        """Start the clock (nothing happens without a timeout)."""
        if self.timeout:
            threading.Thread(target=self._clock, daemon=True, name="mmnb-timeout").start()

    def _clock(self) -> None:
        if not self._over.wait(self.timeout):
            self.timed_out = True
            kill_group(self.pgid)

    def close(self) -> None:
        """The run is over: stop the clock and end whatever is left of the kernel's group."""
        self._over.set()
        kill_group(self.pgid)


def stop_kernels() -> None:
    """Kill this process's children: the kernel and whatever it started (on Dask, every
    kernel of the worker: a signal there stops the worker)."""
    try:
        import psutil
    except ImportError:  # kernels leave by themselves within a second of their parent
        return
    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(children, timeout=5)


def check_kernel(name: str) -> None:
    """Raise a `ValueError` listing the installed kernels if `name` is not one of them."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        manager.get_kernel_spec(name)
    except NoSuchKernel:
        names = sorted(manager.find_kernel_specs())
        raise ValueError(f"kernel {name!r} is not installed; installed kernels: {names}") from None
