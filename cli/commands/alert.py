"""opswatch alert test | ack | silence | unsilence | resend | outbox"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cli.commands.common import (
    UsageError,
    action,
    command_group,
    load_config_for,
    require_dsn,
    run_async,
)
from core.api import (
    OUTBOX_STATUSES,
    AlertActionResult,
    AlertActions,
    Config,
    Database,
    DatabaseUnavailable,
    Deliverer,
    OutboxEntry,
    ReadOnlyError,
    database_for,
    default_actor,
    entries,
    notifiers_for,
    parse_duration,
)


def register(subparsers: Any) -> None:
    sub = command_group(
        subparsers, "alert", "alerts and notifications: test delivery, acknowledge, silence, resend"
    )
    test = action(
        sub,
        "test",
        "send a test message through the real outbox and report whether it was delivered",
        _test,
        "Queue a test notification for every channel that takes SEVERITY (Slack webhooks per "
        "severity, falling back to the default webhook), deliver it through the persistent outbox with "
        "retries, and wait up to --timeout. Exit 0 when delivered, 1 when not (it stays in the outbox for "
        "a running opswatch to retry), 2 on bad input or configuration.",
    )
    test.add_argument("--severity", choices=("critical", "warning"), default="critical")
    test.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for delivery (default 30)",
    )

    ack = action(sub, "ack", "acknowledge a firing alert (no repeats until it resolves)", _ack)
    ack.add_argument("rule")
    ack.add_argument("scope", nargs="?", default="", help="endpoint name (omit for global rules)")

    silence = action(
        sub,
        "silence",
        "hold back notifications for a rule and/or an endpoint for a while",
        _silence,
        "Create a silence (maintenance window), visible to every opswatch instance.",
    )
    silence.add_argument("--rule", default=None, help="rule name (default: any rule)")
    silence.add_argument("--scope", default=None, help="endpoint name (default: any)")
    silence.add_argument("--for", dest="duration", required=True, metavar="DURATION", help="e.g. 30m, 2h")
    silence.add_argument("--reason", required=True)

    unsilence = action(sub, "unsilence", "cancel a silence", _unsilence)
    unsilence.add_argument("silence_id", type=int)

    resend = action(sub, "resend", "re-queue a dead-lettered notification", _resend)
    resend.add_argument("outbox_id", type=int)
    resend.add_argument(
        "--retarget",
        action="store_true",
        help="send it to its route's current destination (also a pending one): for notifications "
        "queued before a webhook URL changed, which `alert outbox` marks as stranded",
    )

    outbox = action(sub, "outbox", "list notifications in the outbox, newest first", _outbox)
    outbox.add_argument("--status", choices=OUTBOX_STATUSES, default=None)
    outbox.add_argument("--limit", type=int, default=20)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than zero")
    return value


def _instance() -> str:
    return f"cli:{socket.gethostname()}:{os.getpid()}"


async def _with_actions(args: argparse.Namespace, config: Config, job: Any) -> int:
    db = database_for(config, require_dsn(config))
    actions = AlertActions(
        db,
        config,
        actor=default_actor(config.triage.actor),
        read_only=bool(getattr(args, "read_only", False)),
    )
    try:
        result: int = await job(db, actions)
        return result
    except ReadOnlyError as exc:
        raise UsageError(str(exc)) from exc
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    except DatabaseUnavailable as exc:
        raise UsageError(f"database unavailable: {exc.reason}") from exc
    finally:
        await db.close()


def _describe(entry: OutboxEntry) -> str:
    protocol = "SMTP" if entry.channel == "email" else "HTTP"
    status = f"{protocol} {entry.last_status}" if entry.last_status else "no response"
    return f"#{entry.id} to {entry.route} ({status}, attempt {entry.attempts})"


def _test(args: argparse.Namespace) -> int:
    config = load_config_for(args)
    require_dsn(config)
    notifiers = notifiers_for(config)
    if not any(n.routes(args.severity) for n in notifiers.values()):
        raise UsageError(
            f"no notification channel takes {args.severity} alerts: configure notifications.slack,"
            " .pagerduty, .email or .webhook for this severity"
        )

    async def job(db: Database, actions: AlertActions) -> int:
        ids = await actions.send_test(args.severity)
        if not ids:
            raise UsageError(f"no notification channel takes {args.severity} alerts")
        deliverer = Deliverer(db, config, instance_id=_instance())
        try:
            return await _deliver(db, deliverer, ids, args.timeout)
        finally:
            await deliverer.stop()

    return run_async(_with_actions(args, config, job))


async def _deliver(db: Database, deliverer: Deliverer, ids: tuple[int, ...], wait_s: float) -> int:
    found = await entries(db, ids)
    for entry in found.values():
        print(f"queued test message #{entry.id} for {entry.route}")
    deadline = time.monotonic() + wait_s
    while True:
        await deliverer.deliver_due(only_ids=ids)
        found = await entries(db, ids)
        rows = [found[i] for i in ids if i in found]
        if rows and all(e.status == "delivered" for e in rows):
            for e in rows:
                print(f"delivered {_describe(e)}")
            return 0
        dead = [e for e in rows if e.status == "dead"]
        if dead or time.monotonic() >= deadline:
            for e in rows:
                if e.status == "delivered":
                    print(f"delivered {_describe(e)}")
                elif e.status == "dead":
                    print(
                        f"gave up on {_describe(e)}: {e.last_error}; dead-lettered "
                        f"(resend with: opswatch alert resend {e.id})"
                    )
                else:
                    print(
                        f"not delivered within {wait_s:g}s: {_describe(e)}: "
                        f"{e.last_error or 'no attempt yet'}; "
                        "kept in the outbox, a running opswatch keeps retrying"
                    )
            return 1
        await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def _act(args: argparse.Namespace, call: Callable[[AlertActions], Awaitable[AlertActionResult]]) -> int:
    """Run one operator action and print its outcome."""
    config = load_config_for(args)

    async def job(db: Database, actions: AlertActions) -> int:
        result = await call(actions)
        print(f"{result.outcome}: {result.message}")
        return 0

    return run_async(_with_actions(args, config, job))


def _ack(args: argparse.Namespace) -> int:
    return _act(args, lambda actions: actions.acknowledge(args.rule, args.scope))


def _unsilence(args: argparse.Namespace) -> int:
    return _act(args, lambda actions: actions.unsilence(args.silence_id))


def _resend(args: argparse.Namespace) -> int:
    return _act(args, lambda actions: actions.resend(args.outbox_id, retarget=args.retarget))


def _silence(args: argparse.Namespace) -> int:
    config = load_config_for(args)
    try:
        duration = parse_duration(args.duration)
    except ValueError as exc:
        raise UsageError(f"--for: {exc}") from exc

    async def job(db: Database, actions: AlertActions) -> int:
        s = await actions.silence(args.rule, args.scope, duration, args.reason)
        what = " ".join(
            p for p in (f"rule {s.rule}" if s.rule else "", f"scope {s.scope}" if s.scope else "") if p
        )
        print(f"silence #{s.id} for {what} until {s.ends_at:%Y-%m-%d %H:%M:%S %Z}: {s.reason}")
        return 0

    return run_async(_with_actions(args, config, job))


def _outbox(args: argparse.Namespace) -> int:
    config = load_config_for(args)

    async def job(db: Database, actions: AlertActions) -> int:
        for e in await actions.outbox(args.status, args.limit):
            error = f"  {e.last_error}" if e.last_error else ""
            if actions.stranded(e):
                error += (
                    "  [stranded: queued for a destination this configuration does not have; "
                    f"opswatch alert resend {e.id} --retarget]"
                )
            print(
                f"#{e.id:<6} {e.created_at:%Y-%m-%d %H:%M:%S} {e.status:<9} {e.attempts:>2}x {e.route:<16} "
                f"{e.summary}{error}"
            )
        return 0

    return run_async(_with_actions(args, config, job))
