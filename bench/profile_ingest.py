"""Where ingest spends its time: ``python -m bench.profile_ingest``.

Starts the real server (fsync on, ``--workers`` as given, default 2), drives
one wrk scenario of ``bench.run`` at its settings (64 connections, 2 threads)
and samples every server process with py-spy meanwhile. Prints, per process
role (supervisor, worker, storage), the functions holding the most samples:
inclusive (the function or anything it called) and self (the function's own
code). These are the "top lines" that ``docs/benchmarks.md`` quotes.

Options: ``--scenario collect_single|collect_batch50|api_batch500``,
``--duration SECONDS`` (default 15), ``--workers N``, ``--top N``, ``--keep DIR``
(py-spy's raw stacks, for a flame graph or a closer look).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.run import (
    ROOT,
    BenchError,
    create_pixel,
    free_port,
    process,
    run_wrk,
    server_env,
    wait_http,
)

SCENARIOS = {
    "collect_single": ("collect", "1"),
    "collect_batch50": ("collect", "50"),
    "api_batch500": ("api", "500"),
}
# py-spy's raw format: "thread (idle);frame;frame;... count", a frame being
# "function (path:line)".
_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<path>[^():]+)(?::\d+)?\)$")


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def role(pid: int) -> str:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    text = " ".join(a.decode(errors="replace") for a in argv)
    for name in ("storage", "worker"):
        if name in text:
            return name
    return "process"


def frame_name(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("path")
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = os.path.relpath(path, ROOT) if path.startswith(str(ROOT)) else path
    return f"{m.group('fn')} ({path})"


def summarise(raw: Path) -> tuple[int, Counter[str], Counter[str]]:
    total, inclusive, own = 0, Counter[str](), Counter[str]()
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [frame_name(f) for f in stack.split(";")[1:]]  # the first is the thread
        if not frames:
            continue
        total += n
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n
    return total, inclusive, own


def table(title: str, total: int, counts: Counter[str], top: int) -> list[str]:
    lines = [f"{title} ({total:,} samples)", "", "| % | function |", "|---:|---|"]
    for name, n in counts.most_common(top):
        lines.append(f"| {100 * n / max(1, total):.1f} | `{name}` |")
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="collect_single")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--keep", type=Path, help="copy py-spy's raw stacks into this folder")
    ns = parser.parse_args(argv)
    spy_bin = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    for tool in ("wrk", spy_bin):
        if shutil.which(tool) is None:
            print(f"profile: {tool} is not installed", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="pixel-profile-"))
    env = server_env(work / "data")
    pixel = create_pixel(env)
    port = free_port()
    cmd = [sys.executable, "-m", "pixel_server", "serve", "--port", str(port)]
    cmd += ["--workers", str(ns.workers)]
    log = work / "server.log"
    kind, per_request = SCENARIOS[ns.scenario]
    nonce = f"p{int(time.time())}"
    args = [kind, pixel["id"], per_request, pixel["api_key"], nonce]
    lines: list[str] = []
    try:
        with process(cmd, env, log) as proc:
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/readyz", proc, log)
            run_wrk(base, 2.0, args)  # warm-up
            pids = [proc.pid, *children(proc.pid)]
            spies = []
            for pid in pids:
                out = work / f"{pid}.raw"
                spy = [spy_bin, "record", "--pid", str(pid), "--duration", str(int(ns.duration))]
                spy += ["--rate", "100", "--format", "raw", "--nonblocking", "--output", str(out)]
                spies.append((pid, out, subprocess.Popen(spy, stdout=subprocess.DEVNULL)))
            time.sleep(0.5)
            w = run_wrk(base, ns.duration, args)
            for _, _, spy in spies:
                spy.wait(timeout=ns.duration + 60)
            load = os.getloadavg()[0]
            lines.append(
                f"`python -m bench.profile_ingest --scenario {ns.scenario} --workers "
                f"{ns.workers}`: {w['requests'] / ns.duration:,.0f} req/s, p99 "
                f"{w['p99_ms']:.1f} ms under py-spy (100 Hz, non-blocking), load {load:.1f}"
            )
            lines.append("")
            seen: Counter[str] = Counter()
            for pid, out, _ in spies:
                if not out.exists():
                    continue
                name = role(pid) if pid != proc.pid else "supervisor"
                seen[name] += 1
                label = f"{name} {seen[name]}" if name == "worker" else name
                total, inclusive, own = summarise(out)
                if ns.keep:
                    ns.keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(out, ns.keep / f"{label.replace(' ', '')}.raw")
                lines += table(f"**{label}**, inclusive", total, inclusive, ns.top)
                lines += table(f"**{label}**, self", total, own, ns.top)
    except BenchError as exc:
        print(f"profile: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
