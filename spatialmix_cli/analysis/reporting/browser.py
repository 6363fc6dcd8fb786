"""Render report.html in headless Chromium: count images that failed to load and take a screenshot
(``spatialmix report --screenshot``).

report.html carries a small inline script that, once the page has loaded, writes how many ``<img>`` elements
loaded and how many are broken onto ``<body>`` (``data-images-loaded`` / ``data-images-broken``), and the
page's height (``data-page-height``), which sets the screenshot's: the whole page, up to MAX_HEIGHT px. Chromium's
``--dump-dom`` prints the DOM after the script ran, so the count comes from the browser itself, not from a
parse of our own HTML. Chromium is driven through its command line rather than Playwright/Selenium: the two
flags we need (``--dump-dom``, ``--screenshot``) are enough, and no extra package is needed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError, ExternalToolError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless on a machine without a screen or network: no sandbox (root in containers), no GPU, and no
# background connections (a closed network refuses them, many at a time).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


MAX_HEIGHT = 32000  # px: the tallest screenshot taken (Chromium's own limit on one capture is near this)
FALLBACK_HEIGHT = 6000  # px: the screenshot's height when the page did not say its own


@dataclass(frozen=True)
class BrowserCheck:
    images: int  # <img> elements that loaded
    broken: int  # <img> elements that did not
    screenshot: Path | None
    page_height: int | None = None  # px, at the screenshot's width, as the page measured itself
    shot_height: int | None = None  # px, the screenshot's height: the page's, or MAX_HEIGHT where it is cut

    @property
    def cut(self) -> bool:
        """Whether the screenshot stops before the page's end."""
        return (
            self.page_height is not None
            and self.shot_height is not None
            and self.shot_height < self.page_height
        )


def page_height(dom: str) -> int | None:
    """The page's height in px that report.html's script wrote onto ``<body>`` (``data-page-height``) in
    the DOM Chromium dumped, or None where it is missing."""
    found = re.search(r'data-page-height="(\d+)"', dom)
    return int(found.group(1)) if found else None


def shot_height(height: int | None, cap: int = MAX_HEIGHT) -> int:
    """The screenshot's height for a page ``height`` px tall: all of it up to ``cap``; FALLBACK_HEIGHT
    where the page did not say."""
    return FALLBACK_HEIGHT if height is None else max(1, min(height, cap))


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary on PATH, or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _chromium(binary: str, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="spatialmix-chromium-") as profile:
        cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def check_html(
    html_path: Path,
    screenshot: Path | None = None,
    *,
    chromium: str | None = None,
    width: int = 1280,
    max_height: int = MAX_HEIGHT,
    timeout: float = 120.0,
) -> BrowserCheck:
    """Load ``html_path`` in headless Chromium; return image counts and (optionally) write a PNG screenshot
    of the whole page (``width`` px wide, as tall as the page measured itself in the same load that
    counted the images, at most ``max_height``)."""
    binary = chromium or find_chromium()
    if binary is None:
        raise ExternalToolError("no Chromium found on PATH (Debian: apt-get install chromium)")
    url = Path(html_path).resolve().as_uri()
    size = f"--window-size={width},{FALLBACK_HEIGHT}"  # the same width as the screenshot: the same layout
    dom = _chromium(binary, [size, "--virtual-time-budget=10000", "--dump-dom", url], timeout)
    loaded = re.search(r'data-images-loaded="(\d+)"', dom.stdout)
    broken = re.search(r'data-images-broken="(\d+)"', dom.stdout)
    if loaded is None or broken is None:
        raise ExternalToolError(
            f"Chromium did not run the report's image check (exit {dom.returncode}): {dom.stderr.strip()[-500:]}"
        )
    shot: Path | None = None
    tall = page_height(dom.stdout)
    height = shot_height(tall, max_height)
    if screenshot is not None:
        screenshot = Path(screenshot).resolve()
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        args = [
            f"--screenshot={screenshot}",
            f"--window-size={width},{height}",
            "--virtual-time-budget=10000",
            url,
        ]
        done = _chromium(binary, args, timeout)
        if not screenshot.is_file():
            raise ExternalToolError(
                f"Chromium wrote no screenshot (exit {done.returncode}): {done.stderr.strip()[-500:]}"
            )
        shot = screenshot
    return BrowserCheck(
        images=int(loaded.group(1)),
        broken=int(broken.group(1)),
        screenshot=shot,
        page_height=tall,
        shot_height=height if shot is not None else None,
    )


def screenshot_report(files: list[Path], screenshot: Path) -> tuple[Path, BrowserCheck]:
    """``spatialmix report --screenshot``: the HTML page among a report's written ``files`` rendered in
    headless Chromium, its screenshot saved to ``screenshot``; returns the page and what Chromium saw."""
    html_path = next((p for p in files if p.suffix == ".html"), None)
    if html_path is None:
        raise ConfigError("--screenshot needs the HTML report: use --format html or both")
    return html_path, check_html(html_path, screenshot)
