"""Headless Chromium for tests that must see a page rendered, not just its markup.

Why: a report is only useful if a browser draws it; this renders it the way a reader's
browser would. Chromium comes from Debian (packages ``chromium`` and ``chromium-driver``) and
is installed here, by the test setup, when missing, so a fresh machine or CI needs no manual
step. Like ``bqemulator``, this module does not import pytest and works from plain scripts.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from tests.support.apt import AptUnavailable, apt_install

CHROMIUM = Path("/usr/bin/chromium")
PACKAGES = ("chromium", "chromium-driver")
_install_lock = threading.Lock()

# Flags that keep a headless run offline and deterministic: no sandbox (tests run as root in
# containers), no GPU, and none of the background fetches Chromium makes on first start.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


class ChromiumUnavailable(RuntimeError):
    """Chromium is missing and could not be installed (no root, no apt-get, or apt failed)."""


def ensure_chromium() -> Path:
    """The Chromium binary, installed with apt-get first when it is missing."""
    with _install_lock:
        found = CHROMIUM if CHROMIUM.exists() else _on_path()
        if found is not None:
            return found
        _apt_install()
        if not CHROMIUM.exists():
            raise ChromiumUnavailable(f"apt-get installed {PACKAGES} but {CHROMIUM} is missing")
        return CHROMIUM


def _on_path() -> Path | None:
    name = shutil.which("chromium") or shutil.which("chromium-browser")
    return Path(name) if name else None


def _apt_install() -> None:
    try:
        apt_install(PACKAGES, "chromium")
    except AptUnavailable as exc:
        raise ChromiumUnavailable(str(exc)) from None


def _run(page: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    binary = ensure_chromium()
    with tempfile.TemporaryDirectory(prefix="tablemake-chromium-") as profile:
        return subprocess.run(
            [str(binary), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def screenshot(page: Path, png: Path, *, width: int = 1400, height: int = 900) -> Path:
    """Render ``page`` (a local HTML file) and save what the browser shows as ``png``."""
    proc = _run(page, f"--screenshot={png.resolve()}", f"--window-size={width},{height}")
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}):\n{proc.stderr}")
    return png


def dump_dom(page: Path) -> str:
    """The DOM after the browser loaded ``page``, serialised as HTML."""
    proc = _run(page, "--dump-dom")
    if proc.returncode != 0:
        raise RuntimeError(f"chromium --dump-dom failed (exit {proc.returncode}):\n{proc.stderr}")
    return proc.stdout
