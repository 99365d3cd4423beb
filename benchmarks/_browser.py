"""Headless Debian Chromium driven by Selenium through Debian's own chromedriver, for the
explorer's benchmark and browser test: Selenium Manager never runs (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMEDRIVER: Final = Path("/usr/bin/chromedriver")
INSTALL: Final = "apt-get install chromium chromium-driver"


class BrowserMissingError(Exception):
    """No system Chromium or chromedriver; the message names the install command."""


def chromium(width: int = 1280, height: int = 800) -> Chrome:
    """A headless Chromium window of `width` x `height` that keeps the console log (level ALL)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        raise BrowserMissingError(f"no {CHROMIUM} or {CHROMEDRIVER}: install them with `{INSTALL}`")
    from selenium.webdriver import Chrome, ChromeOptions
    from selenium.webdriver.chrome.service import Service

    options = ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


def wait_for(driver: Chrome, script: str, what: str, timeout_s: float = 60.0) -> Any:
    """Poll the JavaScript expression `script` until it is truthy; its value. An
    `AssertionError` naming `what` after `timeout_s`."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout_s, poll_frequency=0.2).until(
            lambda d: d.execute_script(f"return {script}")
        )
    except TimeoutException:
        raise AssertionError(f"waited {timeout_s:g} s for {what}") from None


def console_errors(driver: Chrome) -> list[str]:
    """The console's SEVERE entries since the last call."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [str(e["message"]) for e in entries if e["level"] == "SEVERE"]
