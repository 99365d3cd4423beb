"""The explorer in a real headless Chromium against a running devnet: the live view draws
messages and a milestone, the search box finds a transfer, its page leads to its milestone, the
channels page to a channel a device pays through, the search box explains a refused message, on
a desktop and a phone viewport, with no console error. Screenshots are kept under the test's tmp
dir (and `$EXPLORER_ARTIFACTS`)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import trio
from selenium.webdriver.common.keys import Keys

from benchmarks._browser import BrowserMissingError, chromium, console_errors, wait_for
from tangle.protocol.message import decode_message, encode_message, prepare
from tangle.protocol.payload import TaggedData
from tangle.protocol.pow import work_value
from tangle.window.dag import GENESIS_ID
from tanglepay.devnet import NETWORK_ID, PARAMS, DevnetOptions, run

if TYPE_CHECKING:
    from collections.abc import Callable

    from selenium.webdriver import Chrome


WIDER_THAN_THE_SCREEN = """
const width = document.documentElement.clientWidth;
if (document.documentElement.scrollWidth <= width) return [];
return [...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > width && !e.closest(".scroll"))
  .map((e) => `${e.tagName}#${e.id}.${e.className} ${e.getBoundingClientRect().right}`);
"""


def browser(width: int = 1280, height: int = 800) -> Chrome:
    try:
        return chromium(width, height)
    except BrowserMissingError as exc:
        pytest.skip(str(exc))


def shot(driver: Chrome, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(folder / f"{name}.png"))
    extra = os.environ.get("EXPLORER_ARTIFACTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / f"{name}.png", Path(extra) / f"{name}.png")


def refused_message(api: str) -> str:
    """Send the node a message without its proof-of-work; the id of what it refused."""
    unsent = prepare(NETWORK_ID, TaggedData(tag=b"lazy", data=b"no work"), PARAMS.work_per_kib)
    nonce = next(n for n in range(10_000) if work_value(unsent.root, n) > unsent.target)
    raw = encode_message(unsent.attach((GENESIS_ID,), nonce))
    answer = httpx.post(f"{api}/api/v1/messages", json={"message": raw.hex()}, timeout=30)
    assert answer.json()["error"]["code"] == "insufficient_work"
    return decode_message(raw).id.hex()


def walk(url: str, folder: Path) -> None:
    """The person's path through the dashboard (blocking: run in a thread)."""
    driver = browser()
    try:
        driver.get(url)
        wait_for(driver, "window.__explorer && window.__explorer.ready", "the page to load")
        wait_for(
            driver,
            "__explorer.store.vertices.size > 0 && __explorer.store.milestones.length > 0"
            " && __explorer.metrics.frames.length > 10",
            "the live view to draw messages and a milestone",
        )
        transfer = wait_for(
            driver,
            "[...__explorer.store.vertices.values()].filter(v => v.kind === 'transaction'"
            " && v.state === 'included').map(v => v.id)[0]",
            "a confirmed transfer in the live view",
        )
        shot(driver, folder, "live")
        canvas = driver.find_element("id", "dag")
        canvas.send_keys(Keys.ARROW_RIGHT)
        assert "Selected" in driver.find_element("id", "selection").text
        canvas.send_keys(Keys.ENTER)
        wait_for(driver, "__explorer.rendered.startsWith('#/message/')", "Enter to open a message")
        driver.find_element("tag name", "body").send_keys("/")
        assert driver.switch_to.active_element.get_attribute("id") == "search-box"
        box = driver.find_element("id", "search-box")
        box.send_keys(transfer)
        box.submit()
        wait_for(driver, f"__explorer.rendered === '#/message/{transfer}'", "the message page")
        state = driver.find_element("id", "message-state").text
        assert state.startswith("Confirmed"), state
        took = driver.find_element("id", "confirmation-time").text
        assert re.fullmatch(r"[0-9]+ ms|[0-9]+\.[0-9]{2} s", took), took
        shot(driver, folder, "message")
        driver.find_element("css selector", "main a[href^='#/address/']").click()
        wait_for(driver, "__explorer.rendered.startsWith('#/address/')", "the address page")
        assert driver.find_element("id", "balance").text
        shot(driver, folder, "address")
        driver.back()
        wait_for(driver, f"__explorer.rendered === '#/message/{transfer}'", "back to the message")
        link = driver.find_element("css selector", "main a[href^='#/milestone/']")
        index = link.get_attribute("href").rsplit("/", 1)[1]
        link.click()
        wait_for(driver, f"__explorer.rendered === '#/milestone/{index}'", "the milestone page")
        assert len(driver.find_element("id", "inclusion-root").text) == 64
        shot(driver, folder, "milestone")
        driver.find_element("css selector", "nav a[data-page='milestones']").click()
        wait_for(driver, "__explorer.rendered === '#/milestones'", "the milestone list")
        assert driver.find_elements("css selector", "main tbody tr")
        shot(driver, folder, "milestones")
        driver.find_element("css selector", "nav a[data-page='channels']").click()
        channel = wait_for(
            driver,
            "__explorer.rendered === '#/channels' && document.querySelector("
            "\"main a[href^='#/channel/']\")",
            "a channel on the channels page",
        )
        shot(driver, folder, "channels")
        channel.click()
        wait_for(driver, "document.getElementById('channel-state')", "the channel page")
        shot(driver, folder, "channel")
        refused = refused_message(url.rstrip("/"))
        box = driver.find_element("id", "search-box")
        box.clear()
        box.send_keys(refused)
        box.submit()
        wait_for(driver, f"__explorer.rendered === '#/message/{refused}'", "the refused message")
        said = driver.find_element("css selector", "main .problem").text
        assert "refused this message (insufficient_work)" in said, said
        shot(driver, folder, "refused")
        driver.find_element("css selector", "nav a[data-page='peers']").click()
        wait_for(driver, "__explorer.rendered === '#/peers'", "the network page")
        shot(driver, folder, "peers")
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True},
        )
        driver.get(url)
        wait_for(driver, "__explorer.ready && __explorer.store.vertices.size > 0", "phone view")
        wide = driver.execute_script(WIDER_THAN_THE_SCREEN)
        assert wide == [], f"the phone view scrolls sideways: {wide}"
        shot(driver, folder, "phone")
        assert console_errors(driver) == []
    finally:
        driver.quit()


@pytest.mark.slow
async def test_a_person_follows_a_transfer_and_a_channel(tmp_path: Path) -> None:
    browser().quit()  # skips, naming the install command, when the browser is absent
    lines: list[str] = []
    stop, confirming = trio.Event(), trio.Event()

    def say(line: str) -> None:
        lines.append(line)
        if line.startswith("milestone"):
            confirming.set()

    options = DevnetOptions(data_dir=tmp_path / "devnet", nodes=1, interval_s=0.5, tps=10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_run, options, say, stop)
        with trio.fail_after(120):
            await confirming.wait()
        assert lines[0].startswith("dashboard")
        url = lines[0].split()[1]
        await trio.to_thread.run_sync(walk, url, tmp_path / "screenshots")
        stop.set()


async def _run(options: DevnetOptions, say: Callable[[str], None], stop: trio.Event) -> None:
    await run(options, say, stop=stop)
