"""Replacing a file so that a crash leaves the old content or the new, never a mix.

The one way every small state file is rewritten (log offsets, spill chunks,
backfill jobs, the webhook ledger, console sessions, the secret key, patched
theme files): write a temporary file beside the target, fsync it, rename it
over the target, fsync the folder so the rename itself survives a power cut.
The temporary name is unique, so two writers never share one, and it ends in
``.tmp``, which no reader of these folders picks up.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a folder's entries (new, renamed or removed files) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes, *, fsync: bool = True, mode: int = 0o600) -> None:
    """Atomically replace ``path`` by ``data``, created with ``mode``.

    ``fsync=False`` keeps the atomicity (readers see old or new) without the
    durability: for tests and for callers that opted out of fsync.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask must not narrow a mode the caller asked for
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)
