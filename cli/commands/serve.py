"""opswatch serve --wall: the read-only wall console for a browser (a TV without a terminal)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import Any

from cli.commands.common import UsageError, load_config_for, require_dsn, run_async, subparser
from cli.commands.console import THEME_CHOICES
from core.api import find_config_path, register_secret, start_observability
from tui.webwall import TOKEN_ENV, WallServer, resolve_token, serve_until_stopped, wall_command


def register(subparsers: Any) -> None:
    parser = subparser(
        subparsers,
        "serve",
        "serve the read-only wall console to web browsers (token required)",
        "Serve the wall console (opswatch --wall --read-only, with this config) to browsers through "
        "textual-serve: one console process per browser session, never a mutating action. Browsers "
        f"need the token: open http://HOST:PORT/?token=TOKEN. The token comes from --token, ${TOKEN_ENV}, "
        "or is generated and printed once at start.",
    )
    parser.add_argument(
        "--wall",
        action="store_true",
        default=argparse.SUPPRESS,
        help="required: serve the wall console (the only thing serve serves)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.add_argument(
        "--token", default=None, help=f"token browsers must present (visible in ps: prefer ${TOKEN_ENV})"
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without a token: anyone who reaches the port sees the wall",
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=8,
        metavar="N",
        help="browser sessions at once; each runs its own console process (default 8)",
    )
    parser.add_argument(
        "--theme",
        choices=THEME_CHOICES,
        default=argparse.SUPPRESS,
        help="colour theme of the served console (default: high-contrast on the wall)",
    )
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    if not getattr(args, "wall", False):
        raise UsageError("serve needs --wall: the read-only wall console is the only thing it serves")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    if args.max_sessions < 1:
        raise UsageError("--max-sessions must be at least 1")
    path = find_config_path(getattr(args, "config", None), os.environ)
    if path is None:
        raise UsageError(
            "serve needs a config file with database.dsn: pass --config PATH or set OPSWATCH_CONFIG"
        )
    config = load_config_for(args)
    require_dsn(config)
    try:
        token, generated = resolve_token(args.token, os.environ, no_auth=args.no_auth)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    start_observability(config, console=True)
    if token:
        register_secret(token)
    server = WallServer(
        wall_command(Path(path), theme=getattr(args, "theme", None)),
        host=args.host,
        port=args.port,
        token=token,
        max_sessions=args.max_sessions,
    )
    return run_async(_run(server, generated=generated))


async def _run(server: WallServer, *, generated: bool) -> int:
    try:
        await server.start()
    except OSError as exc:
        raise UsageError(f"cannot serve on {server.host}:{server.port}: {exc.strerror or exc}") from None
    announce(server, generated=generated, prefix="opswatch serve")
    await serve_until_stopped(server)
    return 0


def announce(server: WallServer, *, generated: bool, prefix: str) -> None:
    """Tell the operator where the wall is; a generated token is printed here and nowhere else."""
    url = server.url
    if server.host in ("0.0.0.0", "::", ""):
        url = f"http://{socket.gethostname()}:{server.port}/"
    lines = [f"{prefix}: wall console on {url}"]
    if server.token is None:
        lines.append(f"{prefix}: --no-auth: anyone who can reach this port can watch the wall")
    elif generated:
        lines.append(f"{prefix}: open {url}?token={server.token}")
        lines.append(f"{prefix}: (token generated for this run; set ${TOKEN_ENV} to keep one)")
    else:
        lines.append(f"{prefix}: open {url}?token=<your token>")
    if server.token is not None and not _loopback(server.host):
        lines.append(f"{prefix}: plain http: put a TLS reverse proxy in front so the token is not in clear")
    print("\n".join(lines), file=sys.stdout, flush=True)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
