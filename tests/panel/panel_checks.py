# SPDX-License-Identifier: MIT
"""The phone panel in a real browser: headless Chromium loads build/panel, connects
over MQTT-over-WebSockets to a real mosquitto and drives the simulator.

Runs only inside the lab's network namespace: tests/panel/test_panel.py starts it through
tests/support/panel_lab.py. The tests share one page and run in file order, as a user would:
set up, switch, then lock, unlock and look for leaks."""

import json
import os
import re
import time

import netns
import panel_lab
import pytest
from playwright.sync_api import expect, sync_playwright
from services import NtpServer, PublicIpServer, free_port
from sign import sign
from oracle import totp_now
from simharness import KEY_A, KEY_B, TOPIC, Sim, base_config

SIGN_KEY = "phone-sign-key-0123456789abcdef"
KEY_WRONG = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"  # a valid Base32 key the device does not know
PASSPHRASE = "correct horse battery staple"
SCREENSHOT = panel_lab.ROOT / "build" / "panel-test" / "panel-phone.png"
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
expect.set_options(timeout=20_000)


@pytest.fixture(scope="module")
def lab():
    try:
        netns.assert_isolated()
    except RuntimeError as e:
        pytest.skip("%s: run tests/panel/test_panel.py" % e)
    why = panel_lab.missing_requirements()
    if why:
        pytest.skip(why)
    broker = panel_lab.broker()
    ntp, ip, web = NtpServer(), PublicIpServer(), panel_lab.WebServer()
    spy = panel_lab.Spy(broker.port)
    cfg = base_config(
        broker.port,
        ntp.port,
        ip.port,
        mqtt={"user": "pico", "password": panel_lab.USERS["pico"]},
        mfa={"pins": {"18": [KEY_A], "26": [KEY_B]}},
        sign={"keys": {"phone": SIGN_KEY}, "pins": {"17": ["phone"]}},
    )
    # GP18 stays on 4 s (not the harness's 1 s), so a loaded machine's page still shows it on.
    cfg["gpio"]["momentary"]["18"] = 4
    mark = spy.mark()
    # Start the device at the beginning of a 30 s step: the panel's first TOTP press then
    # falls, as for a user who opens it right after the device restarted, in the step its
    # clock first synced in, whose codes the device refuses (SECURITY.md, "Replay").
    time.sleep(-time.time() % 30)
    sim = Sim(cfg)
    spy_first = time.monotonic() + 40
    while not ntp.requests:  # the device's first sync on this boot: auth.py's floor
        assert time.monotonic() < spy_first, "the simulator never synced: " + sim.log()[-2000:]
        time.sleep(0.02)
    sync_step = int(time.time()) // 30
    while not any(b'"FROM"' in p for p in spy.payloads()[mark:]):
        assert time.monotonic() < spy_first, "the simulator never published: " + sim.log()[-2000:]
        time.sleep(0.1)
    lab = type("Lab", (), {})()
    lab.broker, lab.web, lab.spy, lab.sim, lab.cfg, lab.ip = broker, web, spy, sim, cfg, ip
    lab.sync_step = sync_step
    lab.ws_url = "ws://127.0.0.1:%d" % broker.ws_port
    yield lab
    sim.stop()
    spy.close()
    for part in (web, ip, ntp, broker):
        part.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = panel_lab.launch_chromium(p)
        yield chromium
        chromium.close()


def set_up(page, lab, url=None, password=None, keep_keys=True):
    """The first visit: open config.json, give the broker login and a passphrase."""
    page.goto(lab.web.url)
    expect(page.locator("#setup")).to_be_visible()
    config = {
        "name": "config.json",
        "mimeType": "application/json",
        "buffer": json.dumps(lab.cfg).encode(),
    }
    page.set_input_files("#config-file", files=[config])
    expect(page.locator("#config-summary")).to_contain_text("Topic " + TOPIC)
    page.fill("#broker-url", url or lab.ws_url)
    page.fill("#broker-user", "phone")
    page.fill("#broker-password", password or panel_lab.USERS["phone"])
    page.set_checked("#keep-keys", keep_keys)
    page.fill("#setup-passphrase", PASSPHRASE)
    page.click("#setup-form button[type=submit]")


def row(page, pin):
    return page.locator('li.pin[data-pin="%d"]' % pin)


@pytest.fixture(scope="module")
def page(browser, lab):
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.on("console", lambda m: print("console:", m.text) if m.type == "error" else None)
    set_up(page, lab)
    expect(page.locator("#link")).to_have_text("broker connected")
    yield page
    context.close()


def test_shows_every_pin_with_its_live_state(page, lab):
    outputs = page.locator("#outputs li.pin")
    expect(outputs).to_have_count(6)
    assert [int(x) for x in outputs.evaluate_all("rows => rows.map(r => r.dataset.pin)")] == [
        16,
        17,
        18,
        19,
        26,
        27,
    ]
    expect(page.locator("#contacts li.pin")).to_have_count(4)
    for pin in (0, 1, 2, 3, 16, 17, 18, 19, 26, 27):
        expect(row(page, pin)).to_have_attribute("data-state", "0")
    expect(page.locator("#device")).to_have_text("device online")
    expect(row(page, 18)).to_contain_text("TOTP")
    expect(row(page, 17)).to_contain_text("signed")


def test_switches_a_relay(page, lab):
    mark = lab.spy.mark()
    row(page, 16).locator("button").click()
    lab.sim.wait_pin(16, 1)
    expect(row(page, 16)).to_have_attribute("data-state", "1")
    assert lab.spy.wait_request(lambda r: "GP16" in r, mark) == {"GP16": 1}
    time.sleep(0.5)  # guard.cooldown_s
    row(page, 16).locator("button").click()
    lab.sim.wait_pin(16, 0)
    expect(row(page, 16)).to_have_attribute("data-state", "0")


def test_triggers_a_momentary_relay(page, lab):
    row(page, 19).locator("button").click()
    lab.sim.wait_pin(19, 1)
    expect(row(page, 19)).to_have_attribute("data-state", "1")
    lab.sim.wait_pin(19, 0)  # released by the device after 2 s
    expect(row(page, 19)).to_have_attribute("data-state", "0")


def test_shows_a_contact_change_and_its_notify(page, lab):
    lab.sim.contact(1, 1)
    expect(row(page, 1)).to_have_attribute("data-state", "1")
    expect(row(page, 1).locator(".state")).to_have_text("closed")
    expect(page.locator("#log")).to_contain_text("NOTIFY GP1=1")
    lab.sim.contact(1, 0)
    expect(row(page, 1).locator(".state")).to_have_text("open")


def code_step(key, code, at):
    """The 30 s step `code` belongs to, near `at`."""
    return next(int(at // 30) + k for k in (-1, 0, 1) if totp_now(key, k, at=at) == code)


def test_totp_pin_request_carries_its_code(page, lab):
    mark = lab.spy.mark()
    row(page, 18).locator("button").click()
    first = lab.spy.wait_request(lambda r: "GP18" in r, mark)
    if code_step(KEY_A, first["MFA"], time.time()) <= lab.sync_step:
        # Pressed in the step the device's clock first synced in (see lab()): refused, and
        # the page says why; the next press waits for the next code, which the device takes.
        expect(page.locator("#alert")).to_contain_text(
            "Refused by the device: Error: MFA validation failed, GPIO cannot be set If the "
            "device restarted less than 30 s ago it takes only the next code: press again"
        )
        assert lab.sim.pin(18) == 0
        mark = lab.spy.mark()
        row(page, 18).locator("button").click()
        lab.sim.wait_pin(18, 1, timeout=45)
        retry = lab.spy.wait_request(lambda r: "GP18" in r, mark)
        assert code_step(KEY_A, retry["MFA"], time.time()) == lab.sync_step + 1
        print("first TOTP press in the device's sync step: refused, the next code taken")
    else:
        lab.sim.wait_pin(18, 1)
    expect(row(page, 18)).to_have_attribute("data-state", "1")
    request = lab.spy.wait_request(lambda r: "GP18" in r, mark)
    assert set(request) == {"MFA", "GP18"} and request["GP18"] == 1
    now = time.time()
    assert request["MFA"] in (totp_now(KEY_A, at=now), totp_now(KEY_A, -1, at=now))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    print("phone screenshot: %s" % SCREENSHOT)


def test_signed_pin_request_carries_its_signature(page, lab):
    mark = lab.spy.mark()
    row(page, 17).locator("button").click()
    lab.sim.wait_pin(17, 1)
    request = lab.spy.wait_request(lambda r: "GP17" in r, mark)
    assert set(request) == {"GP17", "TS", "SIG"}
    assert abs(request["TS"] - time.time()) < 30
    # tools/sign.py, the reference signer, makes the same signature for the same TS.
    assert request == sign(SIGN_KEY, TOPIC, {17: 1}, ts=request["TS"])
    expect(row(page, 17)).to_have_attribute("data-state", "1")


def add_key(page, pin, text):
    if not page.locator("#keys").evaluate("d => d.open"):
        page.click("#keys summary")
    page.select_option("#key-pin", str(pin))
    page.fill("#key-text", text)
    page.click("#key-form button[type=submit]")


def test_wrong_key_is_refused_with_the_devices_reason(page, lab):
    add_key(page, 26, "otpauth://totp/tinyctrl:GP26?secret=%s&issuer=tinyctrl" % KEY_WRONG)
    expect(page.locator("#notice")).to_have_text("Key stored for GP26")
    mark = lab.spy.mark()
    row(page, 26).locator("button").click()
    # The refusal of this very request, not an older alert still on the page.
    lab.spy.wait_payload(lambda p: p.startswith(b"Error: MFA validation failed"), mark)
    expect(page.locator("#alert")).to_contain_text(
        "Refused by the device: Error: MFA validation failed, GPIO cannot be set"
    )
    assert lab.sim.pin(26) == 0
    # The right key, typed as an authenticator app shows it (lower case, in groups).
    add_key(page, 26, " ".join(KEY_B[i : i + 4] for i in range(0, 32, 4)).lower())
    expect(page.locator("#notice")).to_have_text("Key stored for GP26")
    mark = lab.spy.mark()
    row(page, 26).locator("button").click()
    lab.sim.wait_pin(26, 1)
    try:
        expect(page.locator("#alert")).to_be_hidden()
    except AssertionError:
        print("published since the right key's press:", lab.spy.payloads()[mark:])
        print("page log:", page.locator("#log").inner_text())
        raise


def test_malformed_key_is_refused_in_the_page(page, lab):
    add_key(page, 18, "not a key!")
    expect(page.locator("#alert")).to_contain_text("Key not added: the key is not Base32")
    add_key(page, 18, "otpauth://totp/x?secret=%s&algorithm=SHA256" % KEY_A)
    expect(page.locator("#alert")).to_contain_text("the device checks SHA1 codes")


def test_stats_and_getip_buttons(page, lab):
    page.click("button[data-cmd=stats]")
    expect(page.locator("#log")).to_contain_text("Uptime=")
    page.click("button[data-cmd=getip]")
    expect(page.locator("#log")).to_contain_text("IP=203.0.113.7")


def test_no_bare_mfa_message_is_ever_sent(page, lab):
    requests = lab.spy.requests()
    assert any("MFA" in r for r in requests)  # the codes went inside requests
    assert not [r for r in requests if set(r) == {"MFA"}]


def test_wrong_passphrase_then_unlock(page, lab):
    page.reload()
    expect(page.locator("#unlock")).to_be_visible()
    expect(page.locator("#link")).to_have_text("not connected")
    page.fill("#unlock-passphrase", "not the passphrase")
    page.click("#unlock-form button[type=submit]")
    expect(page.locator("#alert")).to_have_text("Wrong passphrase")
    expect(page.locator("#panel")).to_be_hidden()
    page.fill("#unlock-passphrase", PASSPHRASE)
    page.click("#unlock-form button[type=submit]")
    expect(page.locator("#link")).to_have_text("broker connected")
    expect(row(page, 17)).to_have_attribute("data-state", "1")
    expect(page.locator("#alert")).to_be_hidden()


def storage_dump(page):
    """Everything the page keeps: localStorage, sessionStorage and every IndexedDB record."""
    return page.evaluate("""async () => {
        const out = {local: {...localStorage}, session: {...sessionStorage}, idb: {}};
        for (const info of await indexedDB.databases()) {
            const db = await new Promise((ok, fail) => {
                const r = indexedDB.open(info.name);
                r.onsuccess = () => ok(r.result);
                r.onerror = fail;
            });
            for (const store of db.objectStoreNames) {
                out.idb[info.name + "/" + store] = await new Promise((ok) => {
                    const r = db.transaction(store).objectStore(store).getAll();
                    r.onsuccess = () => ok(r.result);
                });
            }
            db.close();
        }
        return JSON.stringify(out);
    }""")


def test_no_key_or_passphrase_in_messages_or_storage(page, lab):
    stored = storage_dump(page).encode()
    assert b"tinyctrl.panel.vault" in stored and b"PBKDF2" in stored  # kept, but sealed
    assert TOPIC.encode() in stored  # the layout is kept in the clear
    secrets = [KEY_A, KEY_B, KEY_WRONG, SIGN_KEY, PASSPHRASE, lab.cfg["wifi"]["password"]]
    secrets += panel_lab.USERS.values()
    messages = lab.spy.payloads()
    assert len(messages) > 10
    leaks = []
    for secret in secrets:
        for form in panel_lab.secret_forms(secret):
            if form in stored:
                leaks.append("%r in browser storage" % secret)
            leaks += ["%r in message %r" % (secret, m) for m in messages if form in m]
    assert not leaks


def test_clock_too_far_off_is_explained(browser, lab):
    context = browser.new_context(**PHONE)
    # A phone whose clock runs 10 minutes fast: beyond the device's max_expired_codes.
    context.add_init_script(
        "(() => { const real = Date.now; Date.now = () => real() + 600000; })()"
    )
    page = context.new_page()
    set_up(page, lab)
    expect(page.locator("#link")).to_have_text("broker connected")
    # The Date header has whole seconds: the page measures 600 or 601 s.
    expect(page.locator("#alert")).to_contain_text(re.compile("clock is 60[01] s off"))
    row(page, 18).locator("button").click()
    expect(page.locator("#alert")).to_contain_text(
        re.compile(
            "Refused by the device: Error: MFA validation failed, GPIO cannot be set "
            "This phone's clock is 60[01] s off"
        )
    )
    context.close()


def test_broker_unreachable_and_refused_login(browser, lab):
    context = browser.new_context(**PHONE)
    page = context.new_page()
    set_up(page, lab, url="ws://127.0.0.1:%d" % free_port())
    expect(page.locator("#alert")).to_contain_text("Broker unreachable at ws://127.0.0.1:")
    expect(page.locator("#link")).to_have_text("broker unreachable")
    page.click("#keys summary")
    page.click("#reset")
    set_up(page, lab, password="wrong-password")
    expect(page.locator("#alert")).to_contain_text(
        "Broker error: Connection refused: Not authorized"
    )
    context.close()


def test_device_going_offline_is_shown(page, lab):
    lab.sim.stop()  # the broker sends the device's last will
    expect(page.locator("#device")).to_have_text("device offline")
    # A page opened later never saw the last will: no answer to its refresh says it instead.
    page.reload()
    page.fill("#unlock-passphrase", PASSPHRASE)
    page.click("#unlock-form button[type=submit]")
    expect(page.locator("#link")).to_have_text("broker connected")
    expect(page.locator("#device")).to_have_text("device not answering", timeout=40_000)
    assert os.path.exists(SCREENSHOT)
