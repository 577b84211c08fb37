"""``pixel-server serve --workers N`` (N >= 2): one supervisor, one storage
process, N ingest workers (docs/architecture.md §8).

The supervisor binds the listening socket once and hands it to every worker
(inherited file descriptor): the kernel queues connections on the one socket
and whichever worker is free accepts, so connections queued while a worker
dies are taken by the others instead of being reset. It restarts a child that
exits (with a growing delay if it keeps dying at start), and on SIGTERM or
SIGINT stops the workers first (each drains its requests and closes its
log), then the storage process (it moves what the workers logged into its
own log and stops the loader and forwarder), then exits 0.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Final

log = logging.getLogger("pixel_server.supervisor")

POLL_S: Final = 0.1
MIN_RESTART_S: Final = 0.2
MAX_RESTART_S: Final = 10.0
QUICK_DEATH_S: Final = 5.0  # a child dying sooner than this after start backs off
WORKER_STOP_S: Final = 40.0  # uvicorn drains for up to 30 s
STORAGE_STOP_S: Final = 120.0


def listen(host: str, port: int, backlog: int = 2048, wait_s: float = 5.0) -> socket.socket:
    """Bind, waiting a little for the workers of a killed predecessor to let go."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            sock.bind((host, port))
            break
        except OSError:
            if time.monotonic() > deadline:
                sock.close()
                raise
            time.sleep(0.1)
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


@dataclass(slots=True)
class Child:
    name: str
    command: list[str]
    pass_fds: tuple[int, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    delay: float = MIN_RESTART_S
    restart_at: float = 0.0
    restarts: int = 0
    history: list[int] = field(default_factory=list)  # exit codes, newest last

    def start(self) -> None:
        self.proc = subprocess.Popen(self.command, pass_fds=self.pass_fds)
        self.started = time.monotonic()
        log.info("started %s", self.name, extra={"pid": self.proc.pid})

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, deadline: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("%s did not stop in time; killing it", self.name)
            self.proc.kill()
            self.proc.wait()


class Supervisor:
    def __init__(
        self,
        host: str,
        port: int,
        run_dir: Path,
        workers: int,
        command: Callable[[str, int, int], list[str]],
    ) -> None:
        """``command(role, slot, listen_fd)`` is the argv of a child process."""
        self._host, self._port, self._workers = host, port, workers
        self._run_dir = run_dir
        self._command = command
        self._stopping = False

    def run(self) -> int:
        self._run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        sock = listen(self._host, self._port)
        fd = sock.fileno()
        storage = Child("storage", self._command("storage", -1, -1))
        workers = [
            Child(f"worker w{k}", self._command("worker", k, fd), pass_fds=(fd,))
            for k in range(self._workers)
        ]
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            storage.start()
            for w in workers:
                w.start()
            while not self._stopping:
                time.sleep(POLL_S)
                for child in (storage, *workers):
                    self._keep_alive(child)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            for w in workers:
                w.signal(signal.SIGTERM)
            deadline = time.monotonic() + WORKER_STOP_S
            for w in workers:
                w.wait(deadline)
            sock.close()
            storage.signal(signal.SIGTERM)
            storage.wait(time.monotonic() + STORAGE_STOP_S)
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _keep_alive(self, child: Child) -> None:
        code = child.exited()
        if code is None:
            return
        now = time.monotonic()
        if child.restart_at == 0.0:
            quick = now - child.started < QUICK_DEATH_S
            child.delay = min(child.delay * 2, MAX_RESTART_S) if quick else MIN_RESTART_S
            child.restart_at = now + child.delay
            child.history.append(code)
            log.warning(
                "%s exited; restarting", child.name,
                extra={"exit_code": code, "restart_in_s": child.delay},
            )  # fmt: skip
        if now >= child.restart_at:
            child.restart_at = 0.0
            child.restarts += 1
            child.start()
