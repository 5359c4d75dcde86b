"""Subcommands of ``opswatch``; each module has ``register(subparsers)``."""

COMMAND_ORDER = [
    "console",
    "demo",
    "run",
    "serve",
    "check",
    "triage",
    "audit",
    "alert",
    "db",
    "config",
]
