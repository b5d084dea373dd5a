"""Install Debian packages a test needs (Chromium, the PostgreSQL server) when missing, so a
fresh machine or CI needs no manual step. Bounded in time: a hung apt-get fails the test
with a message instead of eating the CI budget."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

APT_TIMEOUT = 600.0


class AptUnavailable(RuntimeError):
    """The packages are missing and could not be installed (no root, no apt-get, apt failed)."""


def apt_install(packages: Sequence[str], what: str) -> None:
    """``apt-get update`` then install ``packages``; ``what`` names them in errors."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise AptUnavailable(
            f"{what} is not installed and cannot be installed here (needs root and apt-get): "
            f"run `apt-get update && apt-get install -y {' '.join(packages)}`"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
    ):
        try:
            proc = subprocess.run(
                command, env=env, capture_output=True, text=True, check=False, timeout=APT_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            raise AptUnavailable(f"{' '.join(command)} took over {APT_TIMEOUT:.0f} s") from None
        if proc.returncode != 0:
            raise AptUnavailable(f"{' '.join(command)} failed:\n{proc.stderr[-2000:]}")
