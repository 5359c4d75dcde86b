"""Subcommands of ``opswatch``; each module has ``register(subparsers)``."""

COMMAND_ORDER = [
    "console", "demo", "run", "serve", "check", "dlq", "events", "audit", "alert", "db", "config",
]
