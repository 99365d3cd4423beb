"""The explorer in a real headless Chromium against a running devnet: the live view draws
messages and a milestone, the search box finds a transfer, its page leads to its milestone, the
channels page to a channel a device pays through, the search box explains a refused message; the
test then admits issuers, registers two devices and quarantines one through the node's API, and
the devices page lists the quarantine with its signers, the search box opens a device (its maker's
role looked up by key), its proof downloads (by keyboard) and `tanglepay verify` checks it up to
the reading link it lacks, a quarantine shows on the device's page as it lands and goes when it
expires, and the anchors page groups a device data anchor; on a desktop and a phone viewport,
with no console error. Screenshots are kept under the test's tmp dir (and `$EXPLORER_ARTIFACTS`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import trio
from selenium.webdriver.common.keys import Keys

from benchmarks._browser import BrowserMissingError, chromium, console_errors, wait_for
from coordinator.signers import KeySigner
from payments.roaming.batch import BatchHeader, SignedBatchHeader, anchor_payload
from tangle.protocol.device import AdmitIssuer, IssuerRole, Quarantine, device_id_of
from tangle.protocol.ids import MerkleRoot, MessageId, Signature
from tangle.protocol.message import decode_message, encode_message, prepare
from tangle.protocol.payload import TaggedData
from tangle.protocol.pow import search_reference, work_value
from tangle.window.dag import GENESIS_ID
from tanglepay.devnet import NETWORK_ID, PARAMS, DevnetOptions, run
from tests.registry_records import record, register_body, signer
from wallet.devices.cli import main as verify_main
from wallet.devices.errors import ReadingSignatureError
from wallet.devices.proof import verify_bundle
from wallet.devices.proof_file import read_bundle, read_committee

if TYPE_CHECKING:
    from collections.abc import Callable

    from selenium.webdriver import Chrome

    from tangle.protocol.payload import Payload

MAKER, OP1, OP2 = signer(10), signer(11), signer(12)
DEVICE, HIJACKED = signer(20), signer(21)


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


def submit(api: str, payload: Payload) -> str:
    """Send `payload` on the node's tips with the work done here; its message id."""
    tips = httpx.get(f"{api}/api/v1/tips", timeout=30).json()["tips"]
    unsent = prepare(NETWORK_ID, payload, PARAMS.work_per_kib)
    nonce = search_reference(unsent.root, unsent.target)
    assert nonce is not None
    parents = tuple(sorted(MessageId.from_hex(t) for t in tips))
    raw = encode_message(unsent.attach(parents, nonce))
    answer = httpx.post(f"{api}/api/v1/messages", json={"message": raw.hex()}, timeout=30)
    assert answer.status_code == 201, answer.text
    return decode_message(raw).id.hex()


def until(api: str, path: str, done: Callable[[dict[str, object]], object]) -> None:
    """Ask `path` until `done` holds of its answer (60 s at most)."""
    deadline = time.monotonic() + 60
    while not done(httpx.get(f"{api}{path}", timeout=30).json()):
        assert time.monotonic() < deadline, f"{path} never answered as awaited"
        time.sleep(0.2)


def registry(api: str, data_dir: Path) -> tuple[str, str]:
    """Admit a maker and two operators (the committee signs), register two devices, quarantine
    one by both operators; the two device ids."""
    seeds = json.loads((data_dir / "secrets.json").read_text())["committee"]
    committee = [KeySigner(bytes.fromhex(seed)) for seed in seeds[:3]]
    roles = {MAKER: IssuerRole.MAKER, OP1: IssuerRole.OPERATOR, OP2: IssuerRole.OPERATOR}
    for issuer, role in roles.items():
        body = AdmitIssuer(
            issuer=issuer.public_key, role=role, admitted=True, serial=1, name=b"issuer"
        )
        submit(api, record(body, committee, NETWORK_ID))
    until(api, "/api/v1/explorer/issuers", lambda body: body["total"] == 3)
    for device in (DEVICE, HIJACKED):
        body = register_body(device, MAKER.public_key)
        submit(api, record(body, [device, MAKER, OP1], NETWORK_ID))
    hijacked = device_id_of(HIJACKED.public_key)
    until(api, "/api/v1/explorer/devices", lambda body: body["total"] == 2)
    quarantine = Quarantine(
        device_id=hijacked, serial=1, reason=3, evidence_hash=b"\x0e" * 32, expires_after=10**6
    )
    submit(api, record(quarantine, [OP1, OP2], NETWORK_ID))
    until(api, "/api/v1/explorer/devices?quarantined=true", lambda body: body["total"] == 1)
    return device_id_of(DEVICE.public_key).hex(), hijacked.hex()


def downloaded(folder: Path) -> Path:
    """The one file the browser finished downloading into `folder` (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        done = [f for f in folder.glob("*.json") if f.stat().st_size]
        if done and not list(folder.glob("*.crdownload")):
            return done[0]
        assert time.monotonic() < deadline, "the proof did not download"
        time.sleep(0.1)


def devices_walk(driver: Chrome, url: str, data_dir: Path, folder: Path) -> str:
    """Devices, quarantines, a device's page, its proof and a quarantine it shows as it lands,
    the anchors page; the device's id."""
    api = url.rstrip("/")
    device, hijacked = registry(api, data_dir)
    anchor = submit(api, TaggedData(tag=b"tanglepay/anchor", data=bytes(40)))
    header = BatchHeader(
        agreement=bytes(32),
        sender="DEUVF",
        recipient="FRAOR",
        sequence=7,
        count=5,
        total_charge=1234,
        first_start=1,
        last_start=2,
        sealed_utc=3,
        root=MerkleRoot(bytes(32)),
    )  # the signature is not the page's to check
    batch = submit(
        api, anchor_payload(SignedBatchHeader(header=header, signature=Signature(bytes(64))))
    )
    driver.find_element("css selector", "nav a[data-page='devices']").click()
    row = wait_for(
        driver,
        "__explorer.rendered === '#/devices' && document.querySelector('#quarantines tbody tr')",
        "the quarantine list",
    )
    text = row.text
    assert hijacked[:10] in text, text
    assert "#1000000" in text, text
    assert len(row.find_elements("css selector", "td:last-child span.mono")) == 2  # signers
    shot(driver, folder, "devices")
    box = driver.find_element("id", "search-box")
    box.clear()
    box.send_keys(device)
    box.submit()
    wait_for(driver, f"__explorer.rendered === '#/device/{device}'", "the device page")
    assert driver.find_element("id", "device-status").text == "active"
    maker = driver.find_element("xpath", "//dt[text()='Maker']/following-sibling::dd[1]").text
    assert maker.endswith('maker "issuer"'), maker  # looked up by key (issuers?keys=)
    shot(driver, folder, "device")
    downloads = folder / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.find_element("id", "proof-download").send_keys(Keys.ENTER)  # the keyboard's click
    proof = downloaded(downloads)
    committee = read_committee(data_dir / "network.json")
    with pytest.raises(ReadingSignatureError):  # milestone, registry and status links hold
        verify_bundle(read_bundle(proof), committee.schedule, network_id=committee.network_id)
    assert verify_main([str(proof), "--committee", str(data_dir / "network.json")]) == 1
    latest = httpx.get(f"{api}/api/v1/explorer/milestones", timeout=30).json()
    quarantine = Quarantine(  # expires some 5 s on (a milestone every 0.5 s)
        device_id=device_id_of(DEVICE.public_key),
        serial=1,
        reason=1,
        evidence_hash=bytes(32),
        expires_after=latest["milestones"][0]["index"] + 10,
    )
    submit(api, record(quarantine, [OP1, OP2], NETWORK_ID))
    wait_for(  # the page follows the milestone event that names the device
        driver,
        "document.getElementById('device-status').textContent === 'quarantined'",
        "the device page to show the new quarantine",
    )
    wait_for(  # and the first milestone past its expiry, which changes no entry
        driver,
        "document.getElementById('device-status').textContent === 'active'",
        "the device page to show the quarantine expired",
    )
    driver.find_element("xpath", "//td[text()='register']/following-sibling::td/a").click()
    wait_for(driver, "document.getElementById('record-device')", "the registration's page")
    shot(driver, folder, "registration")
    driver.find_element("css selector", "#record-device a").click()
    wait_for(driver, f"__explorer.rendered === '#/device/{device}'", "its device, from the record")
    until(api, "/api/v1/explorer/anchors", lambda body: body["anchors"][0]["milestone_index"])
    driver.find_element("css selector", "nav a[data-page='anchors']").click()
    link = wait_for(
        driver,
        "__explorer.rendered === '#/anchors' && document.querySelector("
        f"\"[data-prefix='tanglepay/anchor'] a[href='#/message/{anchor}']\")",
        "the device data anchor on the anchors page",
    )
    says = driver.find_element(
        "xpath", f"//a[@href='#/message/{batch}']/ancestor::tr/td[4]"
    ).text  # decoded in the browser from the layout PROTOCOL.md section 12 gives
    assert says == "DEUVF → FRAOR, batch 7: 5 records, 1,234 charged", says
    shot(driver, folder, "anchors")
    fresh = submit(api, TaggedData(tag=b"tanglepay/anchor", data=b"\x01" * 40))
    wait_for(  # read again because the live stream showed a tagged-data message (no polling)
        driver, f"document.querySelector(\"a[href='#/message/{fresh}']\")", "the new anchor"
    )
    driver.find_element("css selector", f"a[href='#/message/{batch}']").click()
    said = wait_for(driver, "document.getElementById('anchor-says')", "the batch header's page")
    assert said.text == says, said.text
    driver.back()
    link = wait_for(
        driver,
        "__explorer.rendered === '#/anchors' && document.querySelector("
        f"\"a[href='#/message/{anchor}']\")",
        "back to the anchors page",
    )
    link.click()
    wait_for(driver, "document.getElementById('proof-download')", "the anchor's proof")
    shot(driver, folder, "anchor")
    return device


def walk(url: str, folder: Path, data_dir: Path) -> None:
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
        device = devices_walk(driver, url, data_dir, folder)
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True},
        )
        for page in ("", "devices", f"device/{device}", "anchors"):
            driver.get(f"{url}#/{page}")
            wait_for(driver, f"__explorer.ready && __explorer.rendered === '#/{page}'", page)
            wide = driver.execute_script(WIDER_THAN_THE_SCREEN)
            assert wide == [], f"the phone view of #/{page} scrolls sideways: {wide}"
            shot(driver, folder, f"phone-{page.split('/')[0] or 'live'}")
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

    options = DevnetOptions(  # no flows: the registry pages hold only what this test records
        data_dir=tmp_path / "devnet", nodes=1, interval_s=0.5, tps=10, flows=()
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_run, options, say, stop)
        with trio.fail_after(120):
            await confirming.wait()
        assert lines[0].startswith("dashboard")
        url = lines[0].split()[1]
        await trio.to_thread.run_sync(walk, url, tmp_path / "screenshots", options.data_dir)
        stop.set()


async def _run(options: DevnetOptions, say: Callable[[str], None], stop: trio.Event) -> None:
    await run(options, say, stop=stop)
