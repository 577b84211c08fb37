"""The ``pixel-server`` command.

Management commands open the data directory themselves when no server holds
it, and otherwise ask the running server through its local admin API (the
embedded engine allows one process per directory). Output is the same either
way. Exit codes: 0 ok, 1 the command failed, 2 bad settings or usage.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from pixel_server import filemodes
from pixel_server.config import ConfigError, Settings, load_settings
from pixel_server.pixel import PLATFORMS, ROLES, RegistryError
from pixel_server.storage.client import DataDirInUse, StorageError, parse_url

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SLOW_OPERATIONS = {
    "catalog.sync": 3600,
    "erase": 600,
}  # seconds the CLI waits for the running server


class CommandError(Exception):
    """The command could not do its work; the message is for the operator."""


# running an operation -------------------------------------------------------


def run_operation(settings: Settings, op: str, args: dict[str, Any]) -> Any:
    """Run a management operation directly or through the running server."""
    from pixel_server.management import Management
    from pixel_server.secretbox import SecretBox
    from pixel_server.storage.database import Database
    from pixel_server.storage.lock import DataDirLock

    lock = DataDirLock(settings.data_dir.resolve())
    try:
        lock.acquire()
    except DataDirInUse:
        return _via_admin_api(settings, op, args)
    database = Database(parse_url(settings.clickhouse_dsn))
    try:
        box = SecretBox(settings.secret_key_path.resolve())
        return Management(database, data_dir=settings.data_dir.resolve(), box=box).run(op, args)
    finally:
        database.close()
        lock.release()


def _via_admin_api(settings: Settings, op: str, args: dict[str, Any]) -> Any:
    from pixel_server import admin

    data_dir = settings.data_dir.resolve()
    deadline = time.monotonic() + 10
    while True:  # a server that is starting writes its admin files last
        try:
            return admin.call(data_dir, op, args, timeout=SLOW_OPERATIONS.get(op, 60))
        except admin.AdminRefused as exc:
            raise CommandError(str(exc)) from None
        except admin.AdminUnavailable as exc:
            if time.monotonic() > deadline:
                raise CommandError(
                    f"data directory {settings.data_dir} is in use by another pixel-server "
                    f"process, and its admin API is not available ({exc})"
                ) from None
            time.sleep(0.2)


# output ---------------------------------------------------------------------

_SECRET_NOTE = "(shown once; store it now: only its hash is kept)"


def _print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def _print_pixel(p: dict[str, Any]) -> None:
    for key, value in p.items():
        if key in ("api_key", "owner_token"):
            continue
        if isinstance(value, list):
            value = ", ".join(value) or "-"
        elif isinstance(value, bool) and key in ("tiktok_access_token", "webhook_secret",
                                                 "store_api_token", "feed_token"):  # fmt: skip
            value = "set" if value else "not set"
        print(f"{key:24} {value}")
    if "api_key" in p:
        print(f"{'api_key':24} {p['api_key']}  {_SECRET_NOTE}")
    if "owner_token" in p:
        print(f"{'owner_token':24} {p['owner_token']}  {_SECRET_NOTE}")


def _print_pixel_table(pixels: list[dict[str, Any]]) -> None:
    if not pixels:
        print("no pixels yet: create one with `pixel-server pixel add --name ... --origin ...`")
        return
    print(f"{'ID':16} {'ENABLED':8} {'PLATFORM':12} {'NAME':30} ORIGINS")
    for p in pixels:
        origins = ", ".join(p["origins"]) or "-"
        enabled = "yes" if p["enabled"] else "no"
        print(f"{p['id']:16} {enabled:8} {p['platform']:12} {p['name'][:30]:30} {origins}")


# commands -------------------------------------------------------------------

_PIXEL_OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("--name", "name", {}),
    ("--origin", "origins", {"action": "append", "help": "storefront origin (repeatable)"}),
    ("--platform", "platform", {"choices": PLATFORMS}),
    ("--timezone", "timezone", {"help": "IANA zone for reports, e.g. Europe/Berlin"}),
    ("--phone-region", "default_phone_region", {"help": "default country for phone numbers"}),
    ("--tiktok-pixel-code", "tiktok_pixel_code", {}),
    ("--tiktok-access-token", "tiktok_access_token", {}),
    ("--tiktok-test-event-code", "tiktok_test_event_code", {}),
    ("--tiktok-api-base", "tiktok_api_base", {}),
    ("--webhook-secret", "webhook_secret", {}),
    (
        "--store-id",
        "store_id",
        {"help": "Ecwid store id, BigCommerce store hash, Shopify shop domain or Woo site URL"},
    ),
    ("--store-api-base", "store_api_base", {}),
    ("--store-api-token", "store_api_token", {}),
    (
        "--consent-mode",
        "consent_mode",
        {"choices": ("granted", "hold"), "help": "hold: send nothing before ttq.grantConsent()"},
    ),
    ("--currency", "currency", {"help": "store currency (ISO 4217) for Ecwid"}),
    ("--click-window-days", "click_window_days", {"type": int}),
    ("--raw-retention-months", "raw_retention_months", {"type": int}),
    ("--tiktok-catalog-id", "tiktok_catalog_id", {"help": "push the catalog to this catalog"}),
    ("--tiktok-bc-id", "tiktok_bc_id", {"help": "the Business Center owning that catalog"}),
    ("--catalog-sync-hours", "catalog_sync_hours", {"type": int, "help": "full pull every N h"}),
]
_PIXEL_FLAGS: list[tuple[str, str]] = [
    ("ip-truncation", "ip_truncation"),
    ("forward-browser", "forward_browser"),
    ("load-tiktok-pixel", "load_tiktok_pixel"),
    ("mirror-to-tiktok-pixel", "mirror_to_tiktok_pixel"),
]


# Credentials may come from a file or standard input ("-"), so they need not
# appear on a command line, where `ps` shows them to every user.
_SECRET_OPTIONS: list[tuple[str, str]] = [
    ("--tiktok-access-token-file", "tiktok_access_token"),
    ("--webhook-secret-file", "webhook_secret"),
    ("--store-api-token-file", "store_api_token"),
]


def _add_pixel_options(parser: argparse.ArgumentParser) -> None:
    for flag, dest, extra in _PIXEL_OPTIONS:
        parser.add_argument(flag, dest=dest, **extra)
    for flag, dest in _SECRET_OPTIONS:
        parser.add_argument(
            flag, dest=f"{dest}_file", metavar="PATH", help="read it from PATH ('-': stdin)"
        )
    for flag, dest in _PIXEL_FLAGS:
        parser.add_argument(f"--{flag}", dest=dest, action=argparse.BooleanOptionalAction)


def _pixel_args(ns: argparse.Namespace) -> dict[str, Any]:
    keys = [dest for _, dest, _ in _PIXEL_OPTIONS] + [dest for _, dest in _PIXEL_FLAGS]
    args = {k: getattr(ns, k) for k in keys if getattr(ns, k, None) is not None}
    for flag, dest in _SECRET_OPTIONS:
        source = getattr(ns, f"{dest}_file", None)
        if source is None:
            continue
        if dest in args:
            raise CommandError(f"give {dest.replace('_', '-')} once: as a value or with {flag}")
        args[dest] = _read_secret(source, flag)
    return args


def _read_secret(source: str, flag: str) -> str:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{flag}: cannot read {source!r}: {exc}") from None
    value = text.strip()
    if not value or "\n" in value:
        raise CommandError(f"{flag}: expected one line holding the secret")
    return value


def cmd_serve(settings: Settings, ns: argparse.Namespace) -> int:
    from pixel_server import logs
    from pixel_server.storage.lock import DataDirLock

    role = getattr(ns, "role", None)
    workers = ns.workers if ns.workers is not None else settings.workers or os.cpu_count() or 1
    lock = DataDirLock(settings.data_dir.resolve())
    # The children of a supervisor killed a moment ago may still be exiting.
    deadline = time.monotonic() + (5 if role is None and workers > 1 else 0)
    while lock.held_by_other() and time.monotonic() < deadline:
        time.sleep(0.1)
    if role is None and lock.held_by_other():
        raise CommandError(
            f"data directory {settings.data_dir} is in use by another pixel-server process"
        )
    if role is not None:
        _die_with_parent(ns.parent)
    logs.configure(settings.log_level, settings.log_format)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with
    # the handler found at start: make that a clean exit 0 instead of -15.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(EXIT_OK))
    if role == "worker":
        return _serve_worker(settings, ns.slot, ns.listen_fd)
    if role == "storage":
        return _serve_storage(settings, workers)
    if workers > 1:
        return _supervise(settings, ns, workers)
    from pixel_server.app import create_app

    app = create_app(settings, announce=_announce)
    _uvicorn(app, host=settings.host, port=settings.port)
    return EXIT_OK


def _announce(line: str) -> None:
    print(line, flush=True)


def _uvicorn(app: Any, sockets: list[Any] | None = None, **where: Any) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        proxy_headers=False,  # trusted proxies are handled by the ingest pipeline
        server_header=False,
        timeout_graceful_shutdown=30,
        **where,
    )
    uvicorn.Server(config).run(sockets=sockets)


def _supervise(settings: Settings, ns: argparse.Namespace, workers: int) -> int:
    from pixel_server.processes.supervisor import Supervisor

    def command(role: str, slot: int, listen_fd: int) -> list[str]:
        argv = [sys.executable, "-m", "pixel_server"]
        if ns.config:
            argv += ["--config", ns.config]
        argv += ["serve", "--role", role, "--workers", str(workers), "--parent", str(os.getpid())]
        argv += ["--host", settings.host, "--port", str(settings.port)]
        if settings.demo:
            argv += ["--demo"]
        if role == "worker":
            argv += ["--slot", str(slot), "--listen-fd", str(listen_fd)]
        return argv

    run_dir = settings.data_dir.resolve() / "run"
    try:
        return Supervisor(settings.host, settings.port, run_dir, workers, command).run()
    except OSError as exc:
        raise CommandError(f"cannot listen on {settings.host}:{settings.port}: {exc}") from None


def _die_with_parent(parent: int) -> None:
    """A child dies with the supervisor (Linux): the server is one unit, and a
    restarted supervisor must find the port and the data directory free. What
    the workers acknowledged is in their logs either way."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before we asked
        os._exit(EXIT_FAILED)


def _serve_worker(settings: Settings, slot: int, listen_fd: int) -> int:
    import socket

    from pixel_server.processes.worker import create_worker_app

    sock = socket.socket(fileno=listen_fd)
    _uvicorn(create_worker_app(settings, slot), sockets=[sock])
    return EXIT_OK


def _serve_storage(settings: Settings, workers: int) -> int:
    import socket

    from pixel_server.app import create_app
    from pixel_server.processes.storage import PeerFromHop
    from pixel_server.processes.worker import storage_socket
    from pixel_server.storage.lock import DataDirLock

    if DataDirLock(settings.data_dir.resolve()).held_by_other():
        raise CommandError(f"data directory {settings.data_dir} is in use")
    path = storage_socket(settings.data_dir.resolve())
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, 0o600)  # the hop trusts what arrives here
    sock.listen(1024)
    app = create_app(settings, worker_slots=workers, announce=_announce)
    _uvicorn(PeerFromHop(app), sockets=[sock])
    return EXIT_OK


def cmd_migrate(settings: Settings, ns: argparse.Namespace) -> int:
    result = run_operation(settings, "migrate", {})
    print(f"schema is current (migrations applied: {', '.join(map(str, result['applied']))})")
    return EXIT_OK


def cmd_rotate_secret_key(settings: Settings, ns: argparse.Namespace) -> int:
    result = run_operation(settings, "secrets.rotate_key", {})
    if ns.json:
        _print_json(result)
    else:
        print(f"new secret key {result['new_key_id']} (was {result['old_key_id']}); "
              f"{result['pixels_resealed']} pixels' credentials sealed with it")  # fmt: skip
    return EXIT_OK


def cmd_status(settings: Settings, ns: argparse.Namespace) -> int:
    """The server's readiness with every detail (``/readyz`` shows states only)."""
    result = run_operation(settings, "status", {})
    if ns.json:
        _print_json(result)
    else:
        print("ready" if result["ready"] else "not ready")
        for name, value in result["checks"].items():
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            print(f"{name:12} {text}")
    return EXIT_OK if result["ready"] else EXIT_FAILED


def cmd_pixel(settings: Settings, ns: argparse.Namespace) -> int:
    action = ns.pixel_command
    if action == "add":
        if not ns.name:
            raise CommandError("pixel add needs --name")
        result = run_operation(settings, "pixel.add", _pixel_args(ns))
    elif action == "list":
        result = run_operation(settings, "pixel.list", {})
        if not ns.json:
            _print_pixel_table(result)
            return EXIT_OK
    elif action == "show":
        result = run_operation(settings, "pixel.show", {"id": ns.id})
    elif action == "update":
        changes = _pixel_args(ns)
        if not changes:
            raise CommandError("pixel update needs at least one setting to change")
        result = run_operation(settings, "pixel.update", {"id": ns.id, **changes})
    elif action in ("enable", "disable"):
        result = run_operation(
            settings, "pixel.update", {"id": ns.id, "enabled": action == "enable"}
        )
    else:  # rotate-key
        result = run_operation(settings, "pixel.rotate_key", {"id": ns.id})
    if ns.json:
        _print_json(result)
    else:
        _print_pixel(result)
    return EXIT_OK


def cmd_token(settings: Settings, ns: argparse.Namespace) -> int:
    if ns.token_command == "add":
        if not (ns.pixel or ns.pixels):
            print("token add needs --pixel ID or --pixels A,B", file=sys.stderr)
            return EXIT_USAGE
        args = {"pixel": ns.pixel, "pixels": ns.pixels, "role": ns.role,
                "label": ns.label or "", "expires": ns.expires}  # fmt: skip
        result = run_operation(settings, "token.add", args)
        if ns.json:
            _print_json(result)
        else:
            print(f"{result['role']} token for {', '.join(result['pixel_ids'])}: {result['token']}")
            print(_SECRET_NOTE)
    elif ns.token_command == "list":
        result = run_operation(settings, "token.list", {"pixel": ns.pixel})
        if ns.json:
            _print_json(result)
        else:
            for t in result:
                state = "revoked" if t["revoked"] else "active"
                print(f"{t['id']}  {t['pixel_id']}  {t['role']:6}  {state:8}  {t['label']}")
    else:
        result = run_operation(settings, "token.revoke", {"token": ns.token})
        print(f"revoked token {result['id']} ({result['role']} of {result['pixel_id']})")
    return EXIT_OK


ERASE_KINDS = ("email", "phone", "external_id", "anonymous_id")


def cmd_erase(settings: Settings, ns: argparse.Namespace) -> int:
    if ns.list:
        rows = run_operation(settings, "erasures.list", {"pixel": ns.pixel})
        if ns.json:
            _print_json(rows)
        for r in [] if ns.json else rows:
            print(
                f"{r['at']:24} {r['kind']:12} {r['subject_prefix']}…  {r['actor']}  {r['removed']}"
            )
        return EXIT_OK
    given = {k: getattr(ns, k) for k in ERASE_KINDS if getattr(ns, k) is not None}
    if len(given) != 1:
        raise CommandError("name exactly one of --email, --phone, --external-id, --anonymous-id")
    ((kind, value),) = given.items()
    if value == "-":  # from standard input: keeps it out of `ps` and the shell history
        value = sys.stdin.readline().strip()
    result = run_operation(settings, "erase", {"pixel": ns.pixel, kind: value})
    if ns.json:
        _print_json(result)
    else:
        print(
            f"erased {result['events']} events ({result['copies']} stored copies, "
            f"{result['purchases']} purchases, {result['linked_browsers']} linked browsers) "
            f"of pixel {result['pixel_id']}; {result['quarantined']} quarantined rows removed. "
            "Copies still in transit are dropped when loaded or sent. TikTok was not asked: "
            "it offers no erasure API."
        )
    return EXIT_OK


def cmd_deliveries(settings: Settings, ns: argparse.Namespace) -> int:
    if ns.deliveries_command == "list":
        rows = run_operation(
            settings, "deliveries.list", {"pixel": ns.pixel, "status": ns.status, "limit": ns.limit}
        )
        if ns.json:
            _print_json(rows)
        elif not rows:
            print("no delivery attempts" + (f" with status {ns.status}" if ns.status else ""))
        else:
            print(f"{'ATTEMPTED_AT':24} {'OUTCOME':8} {'EVENT':16} {'EVENT_ID':24} {'SOURCE':7} "
                  f"{'TRY':>3} {'HTTP':>4} {'CODE':>5}  MESSAGE")  # fmt: skip
            for r in rows:
                print(
                    f"{r['attempted_at']:24} {r['outcome']:8} {r['event'][:16]:16} "
                    f"{r['event_id'][:24]:24} {r['source']:7} {r['attempt']:>3} "
                    f"{r['http_status']:>4} {r['tiktok_code']:>5}  {r['tiktok_message']}"
                )
        return EXIT_OK
    result = run_operation(settings, "deliveries.replay", {"pixel": ns.pixel, "since": ns.since})
    if ns.json:
        _print_json(result)
    else:
        print(f"queued {result['queued']} of {result['dead']} dead-lettered events of "
              f"{result['pixel_id']} for sending again")  # fmt: skip
        if result["missing"]:
            print(
                f"{result['missing']} not found in the events table yet (still dead; "
                "replay again later): " + ", ".join(result["missing_event_ids"])
            )
    return EXIT_OK


def cmd_catalog(settings: Settings, ns: argparse.Namespace) -> int:
    from pixel_server.catalog import cli as catalog_cli

    return catalog_cli.run(settings, ns, run_operation)


def _install_target(settings: Settings, ns: argparse.Namespace) -> tuple[dict[str, Any], str]:
    pixel = run_operation(settings, "pixel.show", {"id": ns.pixel})
    return pixel, f"{settings.base_url}/p/{pixel['id']}.js"


def cmd_install(settings: Settings, ns: argparse.Namespace) -> int:
    from pixel_server import install
    from pixel_server.snippets import SnippetSettings

    pixel, script_url = _install_target(settings, ns)
    platform = ns.platform or pixel["platform"]
    try:
        if platform in install.PASTE_PLATFORMS:
            snippet = SnippetSettings(pixel["id"], settings.base_url, platform)
            print(install.paste_instructions(platform, script_url, snippet))
            return EXIT_OK
        if ns.theme_dir is None:
            raise CommandError(f"install --platform {platform} needs --theme-dir")
        tag = install.snippet_tag(script_url)
        html_file = Path(ns.file) if ns.file else None
        result = install.install(platform, Path(ns.theme_dir), tag, html_file, pixel_id=pixel["id"])
    except install.InstallError as exc:
        raise CommandError(str(exc)) from None
    print(f"{result.action}: {result.path}")
    return EXIT_OK


def cmd_uninstall(settings: Settings, ns: argparse.Namespace) -> int:
    from pixel_server import install

    try:
        result = install.uninstall(ns.platform, Path(ns.theme_dir), ns.pixel,
                                   Path(ns.file) if ns.file else None)  # fmt: skip
    except install.InstallError as exc:
        raise CommandError(str(exc)) from None
    print(f"{result.action}: {result.path}")
    return EXIT_OK


def cmd_connect(settings: Settings, ns: argparse.Namespace) -> int:
    args = {"pixel": ns.pixel, "base_url": settings.base_url}
    if ns.command == "disconnect":
        result = run_operation(settings, "disconnect", args)
    elif ns.action == "status":
        result = run_operation(settings, "connect.status", args)
    else:
        result = run_operation(settings, "connect", args)
    if ns.json:
        _print_json(result)
    elif ns.action == "status" and ns.command == "connect":
        _print_status(result)
    else:
        for verb in ("created", "kept", "removed", "left_over"):
            for item in result[verb]:
                label = "NOT removed" if verb == "left_over" else verb
                print(f"{label:12} {item['kind']:10} {item['key']:28} {item['id']}")
        if not any(result[v] for v in ("created", "kept", "removed", "left_over")):
            print("nothing in the store to " + ("remove" if ns.command == "disconnect" else "keep"))
        for step in result["steps"]:
            print(step)
    return EXIT_FAILED if result.get("left_over") or result.get("ok") is False else EXIT_OK


def _print_status(s: dict[str, Any]) -> None:
    print(f"{'pixel':14} {s['pixel_id']} ({s['platform']}): {'ok' if s['ok'] else 'PROBLEMS'}")
    script = s["script"]
    seen = {True: "found", False: "MISSING", None: "not checked"}[script["found_in_page"]]
    print(f"{'script':14} {seen} on {script['storefront_url'] or '-'}"
          f"; last browser event {script['last_browser_event'] or '-'}")  # fmt: skip
    for hook in s["webhooks"]:
        state = (
            ("active" if hook.get("active") else "INACTIVE") if hook["registered"] else "MISSING"
        )
        print(f"{'webhook':14} {hook['topic']:28} {state:9} last delivery "
              f"{hook['last_delivery'] or '-'}")  # fmt: skip
    for e in s["events"]:
        when = e["last_received_at"]
        print(f"{'event':14} {e['event']:22} {e['source']:8} {e['copies']:>7}  {when}")
    tiktok = s["tiktok"]
    note = tiktok.get("message") or tiktok.get("note", "")
    state = f"verified={tiktok.get('verified')} {note}" if tiktok["configured"] else "not set"
    print(f"{'tiktok':14} {state}")
    print(f"{'catalog':14} {s['catalog']}")
    for problem in s["problems"]:
        print(f"problem: {problem}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixel-server", description="First-party pixel server for online stores."
    )
    parser.add_argument("--config", help="TOML settings file (PIXEL_* variables override it)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host")
    serve.add_argument("--port")
    serve.add_argument("--demo", action="store_true", default=None, help="create a demo pixel")
    serve.add_argument(
        "--workers", type=int, help="ingest worker processes (default: PIXEL_WORKERS or one per "
        "core; 1 runs everything in one process)",
    )  # fmt: skip
    # Set by the supervisor for its children.
    serve.add_argument("--role", choices=("storage", "worker"), help=argparse.SUPPRESS)
    serve.add_argument("--slot", type=int, default=0, help=argparse.SUPPRESS)
    serve.add_argument("--listen-fd", type=int, default=-1, help=argparse.SUPPRESS)
    serve.add_argument("--parent", type=int, default=0, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply pending schema migrations").set_defaults(func=cmd_migrate)
    rotate = sub.add_parser(
        "rotate-secret-key", help="seal every stored credential with a new secret key"
    )
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(func=cmd_rotate_secret_key)
    status = sub.add_parser("status", help="the running server's readiness, with details")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    pixel = sub.add_parser("pixel", help="manage pixels").add_subparsers(
        dest="pixel_command", required=True
    )
    add = pixel.add_parser("add", help="create a pixel; prints its id, API key, owner token")
    _add_pixel_options(add)
    update = pixel.add_parser("update", help="change a pixel's settings")
    update.add_argument("id")
    _add_pixel_options(update)
    pixel.add_parser("list", help="list pixels")
    for name in ("show", "enable", "disable", "rotate-key"):
        pixel.add_parser(name).add_argument("id")
    for p in pixel.choices.values():
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=cmd_pixel)

    inst = sub.add_parser(
        "install", help="put the pixel's tag into a theme (or print what to paste)"
    )
    inst.add_argument("--pixel", required=True)
    inst.add_argument("--platform", choices=PLATFORMS, help="default: the pixel's platform")
    inst.add_argument("--theme-dir", help="theme folder (BigCommerce Stencil, WooCommerce)")
    inst.add_argument("--file", help="the HTML file (platform html), relative to --theme-dir")
    inst.set_defaults(func=cmd_install)
    uninst = sub.add_parser("uninstall", help="remove exactly what install added")
    uninst.add_argument("--pixel", help="default: every pixel-server tag")
    uninst.add_argument("--platform", choices=("bigcommerce", "woocommerce", "html"),
                        required=True)  # fmt: skip
    uninst.add_argument("--theme-dir", required=True)
    uninst.add_argument("--file")
    uninst.set_defaults(func=cmd_uninstall)

    conn = sub.add_parser(
        "connect", help="install the pixel and its webhooks through the store's API"
    )
    conn.add_argument("action", nargs="?", choices=("status",),
                      help="status: check the installation live")  # fmt: skip
    disconn = sub.add_parser("disconnect", help="remove what connect created in the store")
    for p in (conn, disconn):
        p.add_argument("--pixel", required=True)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=cmd_connect, action=None)

    token = sub.add_parser("token", help="manage report tokens").add_subparsers(
        dest="token_command", required=True
    )
    tadd = token.add_parser("add", help="issue a report token")
    tadd.add_argument("--pixel")
    tadd.add_argument("--pixels", help="several pixels, comma-separated (an agency's token)")
    tadd.add_argument("--role", choices=ROLES, default="reader")
    tadd.add_argument("--label")
    tadd.add_argument("--expires", help="ISO-8601 time after which the token stops working")
    tlist = token.add_parser("list", help="list report tokens")
    tlist.add_argument("--pixel")
    trev = token.add_parser("revoke", help="revoke a token (the token or its id)")
    trev.add_argument("token")
    for p in token.choices.values():
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=cmd_token)

    erase = sub.add_parser(
        "erase", help="delete every event of one person (by email, phone, external id or "
        "anonymous id; '-' reads it from standard input)",
    )  # fmt: skip
    erase.add_argument("--pixel", required=True)
    for kind in ERASE_KINDS:
        erase.add_argument(f"--{kind.replace('_', '-')}", dest=kind, metavar="VALUE")
    erase.add_argument("--list", action="store_true", help="list the pixel's past erasures")
    erase.add_argument("--json", action="store_true", help="print JSON")
    erase.set_defaults(func=cmd_erase)

    deliveries = sub.add_parser(
        "deliveries", help="TikTok delivery attempts and dead letters"
    ).add_subparsers(dest="deliveries_command", required=True)
    dlist = deliveries.add_parser("list", help="a pixel's recent attempts, newest first")
    dlist.add_argument("--pixel", required=True)
    dlist.add_argument("--status", choices=("sent", "retrying", "dead"))
    dlist.add_argument("--limit", type=int, default=100)
    dreplay = deliveries.add_parser(
        "replay", help="send a pixel's dead-lettered events again (after fixing its settings)"
    )
    dreplay.add_argument("--pixel", required=True)
    dreplay.add_argument("--since", help="only events dead-lettered since this ISO-8601 time")
    for p in deliveries.choices.values():
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=cmd_deliveries)
    from pixel_server.catalog import cli as catalog_cli

    catalog_cli.add_parser(sub, cmd_catalog)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    overrides = {
        "host": getattr(ns, "host", None),
        "port": getattr(ns, "port", None),
        "demo": getattr(ns, "demo", None),
    }
    try:
        settings = load_settings(os.environ, ns.config, overrides)
    except ConfigError as exc:
        print(f"pixel-server: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    func: Callable[[Settings, argparse.Namespace], int] = ns.func
    filemodes.restrict_new_files()  # the data directory is its owner's alone
    try:
        return func(settings, ns)
    except (CommandError, RegistryError, StorageError) as exc:
        print(f"pixel-server: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
