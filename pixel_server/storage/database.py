"""The ClickHouse connection as the rest of the server sees it.

Connecting and migrating may fail (server down, wrong password); the server
still starts, keeps accepting events into its write-ahead log, reports the
reason in ``/readyz`` and tries again in the background.
"""

from __future__ import annotations

import logging
import threading

from clickhouse_connect.driver.client import Client

from pixel_server.storage import migrate
from pixel_server.storage.client import StorageError, Target, connect, translate_error

log = logging.getLogger("pixel_server.storage")


class Database:
    def __init__(self, target: Target) -> None:
        self.target = target
        self._client: Client | None = None
        self._readers: list[Client] = []
        self._lock = threading.Lock()
        self.last_error: str | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None

    def client(self) -> Client:
        """The migrated client, connecting first if needed; raises StorageError."""
        with self._lock:
            if self._client is None:
                try:
                    client = connect(self.target)
                    applied = migrate.apply(client)
                except StorageError as exc:
                    self.last_error = str(exc)
                    raise
                except Exception as exc:
                    error = translate_error(exc, self.target)
                    self.last_error = str(error)
                    raise error from exc
                for m in applied:
                    log.info("applied migration", extra={"version": m.version, "migration": m.name})
                self._client = client
                self.last_error = None
            return self._client

    def readers(self, n: int) -> list[Client]:
        """``n`` clients for reads that may run at once: the main client and
        ``n - 1`` more, kept for reuse. A client runs one query at a time (the
        embedded engine serialises calls per client, not per engine)."""
        main = self.client()
        with self._lock:
            while len(self._readers) < n - 1:
                self._readers.append(connect(self.target))
            return [main, *self._readers[: n - 1]]

    def check(self) -> str | None:
        """None when ClickHouse answers and the schema is current, else the reason."""
        try:
            client = self.client()
            client.query("SELECT 1")
            waiting = migrate.pending(client)
        except StorageError as exc:
            return str(exc)
        except Exception as exc:
            return str(translate_error(exc, self.target))
        if waiting:
            return f"migrations pending: {', '.join(str(m.version) for m in waiting)}"
        return None

    def close(self) -> None:
        with self._lock:
            for client in [self._client, *self._readers]:
                if client is None:
                    continue
                try:
                    client.close()
                except Exception:  # closing a broken connection is best effort
                    log.debug("error closing ClickHouse client", exc_info=True)
            self._client = None
            self._readers = []
