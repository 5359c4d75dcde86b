"""Running the ``opswatch`` command line in-process, as a user would from a shell."""

from __future__ import annotations

import asyncio
from typing import Any

from cli.main import main


def exit_code(*argv: str) -> int:
    """``opswatch ARGV``'s exit status (argparse errors exit through SystemExit)."""
    try:
        return main(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)


async def exit_code_in_thread(*argv: str) -> int:
    """``exit_code`` in a worker thread: ``main()`` runs its own event loop while the test's serves."""
    return await asyncio.to_thread(exit_code, *argv)


async def run_in_thread(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``opswatch ARGV`` run in a worker thread."""
    code = await exit_code_in_thread(*argv)
    out, err = capsys.readouterr()
    return code, out, err
