"""Tools from Debian packages that some tests need (promtool, chromium): installed when missing."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest


async def debian_tool(package: str, *names: str) -> str:
    """The path of the first of ``names`` on PATH, after ``apt-get install package`` if none is.

    Skips the calling test, with the reason, when it is missing and cannot be installed here
    (not root, no apt-get, or the install failed).
    """

    def found() -> str | None:
        return next((path for name in names if (path := shutil.which(name))), None)

    path = found()
    if path:
        return path
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip(f"{names[0]} is not installed and the tests do not run as root to apt-get install it")
    if shutil.which("apt-get") is None:
        pytest.skip(f"{names[0]} is not installed and there is no apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    detail = ""
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    for command in (install, ["apt-get", "update"], install):
        proc = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, err = await proc.communicate()
        detail = (err.decode(errors="replace").strip().splitlines() or [""])[-1]
        if command[1] == "install" and proc.returncode == 0:
            break
    path = found()
    if not path:
        pytest.skip(f"{names[0]} could not be installed with apt-get: {detail or 'unknown error'}")
    return path
