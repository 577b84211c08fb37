"""Numbered SQL migrations (``migrations/NNNN_name.sql``), each applied once.

Applied versions are recorded in ``schema_migrations``. A file's statements are
separated by a line holding only ``;`` and are idempotent, so a migration cut
short by a crash is simply run again on the next start.

A migration that needs code (a backfill that loops over pixels and months)
is a function registered in :data:`CODE`, run in its number's turn; it must
be safe to run again too.

On a cluster (many workers, one ClickHouse) two workers may start at once and
both run a pending migration; the statements being idempotent makes that safe,
and the duplicate ``schema_migrations`` row collapses (ReplacingMergeTree).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Final

from clickhouse_connect.driver.client import Client

from pixel_server.storage import merged

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    code: Callable[[Client], None] | None = None

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        parts = re.split(r"^\s*;\s*$", self.sql, flags=re.MULTILINE)
        return [p.strip() for p in parts if _strip_comments(p).strip()]


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))


#: Code migrations: number -> (name, function).
CODE: Final[dict[int, tuple[str, Callable[[Client], None]]]] = {
    14: ("backfill_merged_events", merged.backfill),
}


def available() -> list[Migration]:
    """The migrations shipped in the package, in order."""
    folder = resources.files("pixel_server.storage") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    for version, (name, code) in CODE.items():
        found.append(Migration(version, name, f"-- code: {code.__module__}.{code.__name__}", code))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in {versions}")
    return found


def applied_versions(client: Client) -> set[int]:
    client.command(_TABLE)
    rows = client.query("SELECT DISTINCT version FROM schema_migrations").result_rows
    return {int(r[0]) for r in rows}


def pending(client: Client) -> list[Migration]:
    done = applied_versions(client)
    return [m for m in available() if m.version not in done]


def apply(client: Client) -> list[Migration]:
    """Apply every pending migration in order; return the ones applied."""
    applied: list[Migration] = []
    for migration in pending(client):
        for statement in migration.statements():
            client.command(statement)
        if migration.code is not None:
            migration.code(client)
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        applied.append(migration)
    return applied
