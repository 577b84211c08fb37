"""One pixel-server process per data directory.

The write-ahead log and the embedded engine both live in the data directory and
must have a single writer. An advisory ``flock`` on ``<data_dir>/pixel-server.lock``
is released by the kernel when the process dies, even on SIGKILL, so a crash
never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from pixel_server.storage.client import DataDirInUse

LOCK_NAME = "pixel-server.lock"


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`DataDirInUse` at once (never waits)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirInUse(
                f"data directory {self.path.parent} is in use by another pixel-server process"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def held_by_other(self) -> bool:
        """True when another process holds the lock (checked without keeping it)."""
        try:
            self.acquire()
        except DataDirInUse:
            return True
        self.release()
        return False

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
