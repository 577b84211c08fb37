"""Who may read the data directory: its owner only.

The data directory holds the event log (hashed, but still shoppers' shopping),
the embedded ClickHouse, the secret key and the admin secret. Every file the
server creates is 0600 and every folder 0700: the command line sets the
process's umask to 077 before anything is created (it covers what chDB and
the libraries create too), and the lock creates the directory itself 0700.
At start the server looks at the directory and the files at its top and logs
a warning for anything group- or world-accessible (left by an older version,
a restore, or a manual copy); it does not change modes it did not set.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

PRIVATE_UMASK: Final = 0o077


def restrict_new_files() -> int:
    """Make every file and folder this process creates owner-only; the old umask."""
    return os.umask(PRIVATE_UMASK)


def too_open(data_dir: Path) -> list[str]:
    """The data directory and its top-level entries that others may access."""
    found: list[str] = []
    entries = [data_dir]
    try:
        entries += sorted(data_dir.iterdir())
    except OSError:
        return found
    for path in entries:
        try:
            mode = path.lstat().st_mode
        except OSError:
            continue
        if stat.S_ISLNK(mode) or (stat.S_ISSOCK(mode) and path.name != "admin.sock"):
            continue
        if mode & 0o077:
            found.append(f"{path} is mode {stat.S_IMODE(mode):04o}")
    return found
