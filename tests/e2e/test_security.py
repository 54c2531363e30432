# SPDX-License-Identifier: MIT
"""End to end: the real controller on the MicroPython unix port, a loopback mosquitto.

TOTP codes are used once (also after a reconnect); a grant covers its key's pins, its time and
one request; an inline code authorises its own message only; signed commands (tools/sign.py) are
accepted once and refused when replayed, stale or tampered; each pin requires what config.json
says; guessing locks a pin for longer each time; TLS verifies the broker's certificate and name;
config errors never echo a secret."""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import leakcheck
import pytest
import sign
from certs import make_ca, make_server_cert
from oracle import totp_now
from services import Mosquitto, NtpServer, free_port, wait_port
from simharness import (
    KEY_A,
    KEY_B,
    NAME,
    TOPIC,
    Client,
    Codes,
    Sim,
    base_config,
    device,
    state,
    text,
    wait_log,
)

# Not in the quick tier (./build.sh test --quick): attacks that wait out TOTP steps, lockouts
# and resets.
pytestmark = pytest.mark.slow

DENIED = b"Error: MFA validation failed, GPIO cannot be set"
LOCKED = b" (locked for %ds after repeated failures)"
GRANT_S, WINDOW_S, AUTH_FAILURES, LOCKOUT_S = 3, 30, 3, 3
SIGN_TOOL = os.path.join(os.path.dirname(os.path.abspath(sign.__file__)), "sign.py")


def new_key():
    """A Base32 TOTP key of this run only, so no test spends another's codes."""
    return base64.b32encode(os.urandom(20)).decode()


KEY_PORCH, KEY_LOCK, KEY_REPLAY, KEY_EXPIRY = new_key(), new_key(), new_key(), new_key()
KEY_HOUSE, KEY_BARE = new_key(), new_key()
PANEL_KEYS = [new_key() for _ in range(16)]  # one of them has a code with a leading zero now
SCHEDULER = base64.b64encode(os.urandom(18)).decode()
OPEN, LIGHT, GARAGE, SPRINKLER, PORCH, LOCKABLE, REPLAYED, EXPIRING = 16, 17, 18, 19, 20, 21, 2, 3
HALL, DOOR, SHED, PANEL, VALVE = 4, 5, 6, 7, 8


def secured_config(broker_port, ntp_port, ip_port):
    """GP16 open; GP17 TOTP A or B; GP18 (garage, momentary) TOTP A; GP19 signed by the
    scheduler; GP20 TOTP or signed; GP21, GP2, GP3 each with a key of their own."""
    return base_config(
        broker_port,
        ntp_port,
        ip_port,
        mqtt={"user": "tinyctrl", "password": "broker-secret-pw"},
        gpio={
            "relay": [
                OPEN,
                LIGHT,
                SPRINKLER,
                PORCH,
                LOCKABLE,
                REPLAYED,
                EXPIRING,
                HALL,
                DOOR,
                SHED,
                PANEL,
                VALVE,
            ],
            "momentary": {str(GARAGE): 1},
            "contact": [],
            "notify": [],
        },
        mfa={
            "pins": {
                str(LIGHT): [KEY_A, KEY_B],
                str(GARAGE): [KEY_A],
                str(PORCH): [KEY_PORCH],
                str(LOCKABLE): [KEY_LOCK],
                str(REPLAYED): [KEY_REPLAY],
                str(EXPIRING): [KEY_EXPIRY],
                str(HALL): [KEY_HOUSE],
                str(DOOR): [KEY_HOUSE],
                str(SHED): [KEY_BARE],
                str(PANEL): PANEL_KEYS,
            },
            "grant_s": GRANT_S,
            "max_expired_codes": 5,
        },
        sign={
            "keys": {"scheduler": SCHEDULER},
            "pins": {
                str(SPRINKLER): ["scheduler"],
                str(PORCH): ["scheduler"],
                str(VALVE): ["scheduler"],
            },
            "window_s": WINDOW_S,
        },
        guard={"auth_failures": AUTH_FAILURES, "auth_lockout_s": LOCKOUT_S},
    )


class Signer:
    """Signed requests with strictly increasing time stamps, as the device requires per key."""

    def __init__(self):
        self.last_ts = 0

    def synced(self, at=None):
        """The device's clock was first synced at `at`: it refuses time stamps up to then
        (SECURITY.md, finding 2.9)."""
        self.last_ts = max(self.last_ts, round(time.time() if at is None else at))  # see Codes

    def next_ts(self):
        while self.last_ts + 1 > int(time.time()) + WINDOW_S - 2:  # keep within the window
            time.sleep(0.2)
        self.last_ts = max(int(time.time()), self.last_ts + 1)
        return self.last_ts

    def request(self, pins, ts=None, key=SCHEDULER, topic=TOPIC):
        return sign.sign(key, topic, pins, self.next_ts() if ts is None else ts)


def wrong_code(key):
    """A code valid at no step the device could accept now."""
    valid = [totp_now(key, offset_steps=s) for s in range(-7, 3)]
    guess = (valid[0] + 500000) % 1000000
    while guess in valid:
        guess = (guess + 1) % 1000000
    return guess


def moves_since(sim, since, pin):
    return [line for _, line in sim.outputs[since:] if line.startswith("GP%d=" % pin)]


def reply_to(client, payload, timeout=10):
    """Send a request; the device's first text line after it (Error: or Info:)."""
    m = client.mark()
    client.send(payload)
    return client.wait_for(
        lambda p: p.startswith(b"Error:") or p.startswith(b"Info:"), since=m, timeout=timeout
    )


def refused(sim, client, payload, pin):
    """Send a request the device must refuse: returns its error line; `pin` must not move."""
    seen = len(sim.outputs)
    line = reply_to(client, payload)
    time.sleep(0.2)  # a pin moves before the reply is published; leave room for a slow pipe
    assert moves_since(sim, seen, pin) == [], (payload, line)
    return line


def accepted(sim, client, payload, pin, value):
    """Send a request the device must carry out: `pin` goes to `value` and is reported."""
    time.sleep(0.4)  # the burnout guard's cooldown (0.3 s) between moves of one pin
    seen = len(sim.outputs)
    m = client.mark()
    client.send(payload)
    end = time.monotonic() + 10
    while "GP%d=%d" % (pin, value) not in moves_since(sim, seen, pin):
        errors = [p for _, p in client.messages[m:] if p.startswith(b"Error:")]
        assert not errors and time.monotonic() < end, (payload, errors, sim.outputs[-5:])
        time.sleep(0.02)
    client.wait_for(state("GP%d" % pin, value), since=m)


def config_error_output(sim):
    """Everything a simulator refusing its config.json printed and logged; it must stop with 1."""
    assert sim.proc.wait(20) == 1
    end = time.monotonic() + 5
    while not any("reset the board" in line for _, line in sim.outputs):  # its last line
        assert time.monotonic() < end, sim.outputs
        time.sleep(0.05)
    return "\n".join(line for _, line in sim.outputs) + "\n" + sim.log()


def flip(sim, pin):
    return 1 - sim.pin(pin)


@pytest.fixture(scope="module")
def rig(services):
    broker, ntp, ip = services
    cfg = secured_config(broker.port, ntp.port, ip.port)
    with device(cfg, broker.port, clock=True) as (sim, client, _):
        codes, signer = Codes(), Signer()
        codes.synced()
        signer.synced()
        yield sim, client, codes, signer


# ---- TOTP codes and grants


def test_a_replayed_code_is_refused_also_after_a_reconnect(rig):
    sim, client, codes, _ = rig
    code = codes.fresh(KEY_REPLAY)
    assert reply_to(client, {"MFA": code}) == b"Info: MFA code accepted"
    accepted(sim, client, {"GP2": 1}, REPLAYED, 1)  # uses up the grant
    assert reply_to(client, {"MFA": code}) == DENIED
    assert refused(sim, client, {"GP2": 0}, REPLAYED) == DENIED  # the replay opened no grant

    links = sim.log().count("subscribed to")
    sim.wifi(0)
    wait_log(sim, "connection lost", poll=0.01)
    # Back within the second mqtt_as waits before reconnecting; if we are late, its Wi-Fi
    # connect times out after 60 s and the next one succeeds.
    sim.wifi(1)
    wait_log(sim, "subscribed to", links + 1, timeout=100)
    assert refused(sim, client, {"MFA": code, "GP2": 0}, REPLAYED) == DENIED
    assert reply_to(client, {"MFA": code}) == DENIED
    # A fresh code still works: the device refuses the replay, not every code.
    assert reply_to(client, {"MFA": codes.fresh(KEY_REPLAY)}) == b"Info: MFA code accepted"
    accepted(sim, client, {"GP2": 0}, REPLAYED, 0)


def test_a_grant_opens_only_its_keys_pins_for_one_request(rig):
    sim, client, codes, _ = rig
    assert reply_to(client, {"MFA": codes.fresh(KEY_B)}) == b"Info: MFA code accepted"
    assert refused(sim, client, {"GP18": 1}, GARAGE) == DENIED  # KEY_B does not open the garage
    accepted(sim, client, {"GP17": flip(sim, LIGHT)}, LIGHT, flip(sim, LIGHT))
    assert refused(sim, client, {"GP17": flip(sim, LIGHT)}, LIGHT) == DENIED  # used up

    assert reply_to(client, {"MFA": codes.fresh(KEY_A)}) == b"Info: MFA code accepted"
    accepted(sim, client, {"GP18": 1}, GARAGE, 1)
    assert (
        refused(sim, client, {"GP17": flip(sim, LIGHT)}, LIGHT) == DENIED
    )  # first request took it
    sim.wait_pin(GARAGE, 0, timeout=5)


def test_a_grant_expires_after_grant_s(rig):
    sim, client, codes, _ = rig
    assert reply_to(client, {"MFA": codes.fresh(KEY_EXPIRY)}) == b"Info: MFA code accepted"
    time.sleep(GRANT_S + 1.5)
    assert refused(sim, client, {"GP3": 1}, EXPIRING) == DENIED
    assert reply_to(client, {"MFA": codes.fresh(KEY_EXPIRY)}) == b"Info: MFA code accepted"
    accepted(sim, client, {"GP3": 1}, EXPIRING, 1)  # within grant_s it works


def test_an_inline_code_authorises_exactly_its_message(rig):
    sim, client, codes, _ = rig
    first = {"MFA": codes.fresh(KEY_A), "GP17": flip(sim, LIGHT)}
    accepted(sim, client, first, LIGHT, first["GP17"])
    assert refused(sim, client, {"GP17": flip(sim, LIGHT)}, LIGHT) == DENIED  # it opened no grant
    accepted(
        sim, client, {"MFA": codes.fresh(KEY_A), "GP17": flip(sim, LIGHT)}, LIGHT, flip(sim, LIGHT)
    )
    assert refused(sim, client, first, LIGHT) == DENIED  # replayed word for word


# ---- signed commands


def test_a_signed_request_is_accepted_once(rig):
    sim, client, _, signer = rig
    # The first request comes from the documented command line.
    out = subprocess.run(
        [sys.executable, SIGN_TOOL, "--topic", TOPIC, "--ts", str(signer.next_ts()), "GP19=1"],
        env=dict(os.environ, TINYCTRL_SIGN_KEY=SCHEDULER),
        capture_output=True,
        text=True,
        check=True,
    )
    on = json.loads(out.stdout)
    assert set(on) == {"GP19", "TS", "SIG"} and SCHEDULER not in out.stdout + out.stderr
    accepted(sim, client, on, SPRINKLER, 1)
    accepted(sim, client, signer.request({SPRINKLER: 0}), SPRINKLER, 0)
    assert refused(sim, client, on, SPRINKLER) == DENIED


def test_a_stale_or_future_signed_request_is_refused(rig):
    sim, client, _, signer = rig
    stale = int(time.time()) - 2 * WINDOW_S
    assert (
        refused(
            sim, client, signer.request({SPRINKLER: flip(sim, SPRINKLER)}, ts=stale), SPRINKLER
        )
        == DENIED
    )
    # The same request signed now is accepted: only the time stamp was wrong.
    accepted(
        sim,
        client,
        signer.request({SPRINKLER: flip(sim, SPRINKLER)}),
        SPRINKLER,
        flip(sim, SPRINKLER),
    )
    future = max(int(time.time()), signer.last_ts) + WINDOW_S + 5
    early = signer.request({SPRINKLER: flip(sim, SPRINKLER)}, ts=future)
    assert refused(sim, client, early, SPRINKLER) == DENIED
    # Refused, yet spent (SECURITY.md, finding 2.1): it cannot be replayed once its time has come;
    # the key's next request must be stamped later.
    signer.last_ts = future
    later = signer.next_ts()  # waits until `future` is within the window
    assert refused(sim, client, early, SPRINKLER) == DENIED
    accepted(
        sim,
        client,
        signer.request({SPRINKLER: flip(sim, SPRINKLER)}, ts=later),
        SPRINKLER,
        flip(sim, SPRINKLER),
    )


TAMPERINGS = [
    ("value changed", lambda req: dict(req, GP19=1 - req["GP19"])),
    ("pin added", lambda req: dict(req, GP20=1)),
    (
        "signature altered",
        lambda req: dict(req, SIG=req["SIG"][:-1] + ("0" if req["SIG"][-1] != "0" else "1")),
    ),
    ("time stamp moved", lambda req: dict(req, TS=req["TS"] + 1)),
    (
        "signed for another topic",
        lambda req: sign.sign(SCHEDULER, "home/other", {SPRINKLER: req["GP19"]}, req["TS"]),
    ),
    (
        "signed with an unknown key",
        lambda req: sign.sign(new_key(), TOPIC, {SPRINKLER: req["GP19"]}, req["TS"]),
    ),
]


def test_a_tampered_signed_request_is_refused(rig):
    sim, client, _, signer = rig
    for what, tamper in TAMPERINGS:
        genuine = signer.request({SPRINKLER: flip(sim, SPRINKLER)})
        assert refused(sim, client, tamper(genuine), SPRINKLER) == DENIED, what
        accepted(sim, client, genuine, SPRINKLER, genuine["GP19"])  # the untampered original works


# ---- what each pin requires


def test_each_pin_requires_totp_a_signature_either_or_nothing(rig):
    sim, client, codes, signer = rig
    accepted(sim, client, {"GP16": flip(sim, OPEN)}, OPEN, flip(sim, OPEN))
    # TOTP only: a stolen scheduler key does not open the garage.
    assert refused(sim, client, signer.request({GARAGE: 1}), GARAGE) == DENIED
    # Signature only: a valid code does not water the garden.
    assert (
        refused(sim, client, {"MFA": codes.fresh(KEY_A), "GP19": flip(sim, SPRINKLER)}, SPRINKLER)
        == DENIED
    )
    # Either: its own key's code, or the scheduler's signature, but not nothing or another key.
    accepted(sim, client, {"MFA": codes.fresh(KEY_PORCH), "GP20": 1}, PORCH, 1)
    accepted(sim, client, signer.request({PORCH: 0}), PORCH, 0)
    assert refused(sim, client, {"GP20": 1}, PORCH) == DENIED
    assert refused(sim, client, {"MFA": codes.fresh(KEY_B), "GP20": 1}, PORCH) == DENIED
    accepted(sim, client, {"MFA": codes.fresh(KEY_PORCH), "GP20": 1}, PORCH, 1)


# ---- brute force


def test_guessing_locks_the_pin_for_longer_each_time(rig):
    sim, client, codes, _ = rig
    correct = {"MFA": codes.fresh(KEY_LOCK), "GP21": 1}
    lock_ends = []
    for lockout in (LOCKOUT_S, 2 * LOCKOUT_S):
        for i in range(AUTH_FAILURES - 1):
            assert (
                refused(sim, client, {"MFA": wrong_code(KEY_LOCK), "GP21": 1}, LOCKABLE) == DENIED
            )
        assert (
            refused(sim, client, {"MFA": wrong_code(KEY_LOCK), "GP21": 1}, LOCKABLE)
            == DENIED + LOCKED % lockout
        )
        locked_at = time.monotonic()
        lock_ends.append(locked_at + lockout)
        # Even the correct code is refused while locked (and spent: SECURITY.md, finding 2.1).
        assert b"(locked for" in refused(sim, client, correct, LOCKABLE)
        accepted(sim, client, {"GP16": flip(sim, OPEN)}, OPEN, flip(sim, OPEN))  # other pins work
        time.sleep(max(0, locked_at + LOCKOUT_S + 0.5 - time.monotonic()))
    # The second lock outlasts the first: still locked LOCKOUT_S + 0.5 s after it began.
    assert b"(locked for" in refused(sim, client, correct, LOCKABLE)
    time.sleep(max(0, lock_ends[-1] + 0.5 - time.monotonic()))
    assert refused(sim, client, correct, LOCKABLE) == DENIED
    accepted(sim, client, {"MFA": codes.fresh(KEY_LOCK), "GP21": 1}, LOCKABLE, 1)


# ---- an attacker who can publish and read everything on the topic


def lock(sim, client, wrong, pin):
    """Guess wrong until `pin` (or bare codes, pin None) locks; the last refusal."""
    for i in range(AUTH_FAILURES):
        line = reply_to(client, wrong) if pin is None else refused(sim, client, wrong, pin)
    assert b"(locked for" in line, line
    return time.monotonic()


def test_a_code_refused_for_a_lockout_is_spent_and_cannot_open_another_pin(rig):
    """Finding 1: the owner's code, refused while GP4 is locked, is read off the topic and sent
    with GP5 (same key): it must not open GP5, nor GP4 once the lockout is over."""
    sim, client, codes, _ = rig
    locked_at = lock(sim, client, {"MFA": wrong_code(KEY_HOUSE), "GP4": 1}, HALL)
    owner = {"MFA": codes.fresh(KEY_HOUSE), "GP4": 1}
    assert b"(locked for" in refused(sim, client, owner, HALL)
    assert refused(sim, client, {"MFA": owner["MFA"], "GP5": 1}, DOOR) == DENIED
    time.sleep(max(0, locked_at + LOCKOUT_S + 0.5 - time.monotonic()))
    assert refused(sim, client, owner, HALL) == DENIED
    accepted(sim, client, {"MFA": codes.fresh(KEY_HOUSE), "GP4": 1}, HALL, 1)


def test_a_bare_code_refused_for_a_lockout_is_spent(rig):
    """Finding 1, bare codes: during a bare-code lockout the owner's {"MFA": code} is refused;
    the attacker sends the same code inline with the pin."""
    sim, client, codes, _ = rig
    locked_at = lock(sim, client, {"MFA": wrong_code(KEY_BARE)}, None)
    code = codes.fresh(KEY_BARE)
    assert b"(locked for" in reply_to(client, {"MFA": code})
    assert refused(sim, client, {"MFA": code, "GP6": 1}, SHED) == DENIED
    time.sleep(max(0, locked_at + LOCKOUT_S + 0.5 - time.monotonic()))  # bare codes work again
    assert reply_to(client, {"MFA": code}) == DENIED
    assert reply_to(client, {"MFA": codes.fresh(KEY_BARE)}) == b"Info: MFA code accepted"
    accepted(sim, client, {"GP6": 1}, SHED, 1)


def test_a_signed_request_refused_for_a_lockout_cannot_be_replayed(rig):
    sim, client, _, signer = rig
    locked_at = lock(sim, client, {"GP8": 1}, VALVE)
    request = signer.request({VALVE: 1})
    assert b"(locked for" in refused(sim, client, request, VALVE)
    time.sleep(max(0, locked_at + LOCKOUT_S + 0.5 - time.monotonic()))
    assert refused(sim, client, request, VALVE) == DENIED
    accepted(sim, client, signer.request({VALVE: 1}), VALVE, 1)


def leading_zero_code(codes):
    """A code with a leading zero the device takes now, for one of PANEL_KEYS."""
    end = time.monotonic() + 70
    while time.monotonic() < end:
        step = int(time.time() // 30)
        for s in range(max(step - 4, codes.synced_at // 30 + 2), step + 1):
            for key in PANEL_KEYS:
                code = totp_now(key, at=s * 30 + 1)
                if code < 100000 and s > codes.last_step.get(key, -1):
                    codes.last_step[key] = s
                    return code
        time.sleep(1)
    raise AssertionError("no leading-zero code among %d keys" % len(PANEL_KEYS))


def test_iot_mqtt_panel_sends_a_code_with_a_leading_zero(rig):
    """Finding 8: the README's text input template {"MFA": <payload>} with 012345."""
    sim, client, codes, _ = rig
    payload = b'{"MFA": %06d}' % leading_zero_code(codes)
    assert payload.startswith(b'{"MFA": 0')
    assert reply_to(client, payload) == b"Info: MFA code accepted"
    accepted(sim, client, {"GP7": 1}, PANEL, 1)
    assert reply_to(client, payload) == DENIED  # used once, as any code


# ---- secrets


def test_config_errors_never_echo_a_secret(services):
    _, ntp, ip = services
    cfg = base_config(
        free_port(),
        ntp.port,
        ip.port,
        mfa={"pins": {"17": ["NOT-BASE32-SECRET-0189"]}},
        sign={"keys": {"sched": "short-secret"}, "pins": {"19": ["sched"]}},
    )
    output = config_error_output(Sim(cfg))
    assert "mfa.pins.17: key is not Base32" in output, output
    assert "sign.keys.sched: key must be a string of at least 16 characters" in output, output
    assert len(leakcheck.config_secrets(cfg)) == 3  # the Wi-Fi password and both keys
    assert leakcheck.find_leaks(leakcheck.config_secrets(cfg), [("output", output.encode())]) == []


def test_the_leak_check_reads_every_log_output_and_message(rig):
    """The suite-wide check (conftest.py) would see a secret wherever the device put it."""
    sim, client, _, _ = rig
    heap = "HEAP=%d" % sim.heap()  # a line on the simulator's stdout
    texts = leakcheck.session_texts()

    def found_in(canary):
        return leakcheck.find_leaks([("canary", canary)], texts)

    assert "canary in the log of the simulator in %s" % sim.dir in found_in("clock synced:")
    assert "canary in the output of the simulator in %s" % sim.dir in found_in(heap)
    assert any("received by test client" in where for where in found_in('"FROM": "%s"' % NAME))
    raw = base64.b32decode(KEY_A)
    planted = [
        ("hex", b"key=" + raw.hex().encode()),
        ("repr", b"key=%r" % raw),
        ("json", b'{"key": "%s"}' % KEY_A.encode()),
        ("clean", b"Info: MFA code accepted"),
    ]
    assert leakcheck.find_leaks([("mfa", KEY_A)], planted) == [
        "mfa in hex",
        "mfa in json",
        "mfa in repr",
    ]


# ---- TLS


@pytest.fixture(scope="module")
def certs():
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed: apt-get install openssl")
    folder = tempfile.mkdtemp(prefix="tinyctrl-tls-")
    make_ca(folder, "ca")
    make_ca(folder, "other-ca")
    make_server_cert(folder, "server", "ca", "127.0.0.1")
    make_server_cert(folder, "misnamed", "ca", "broker.invalid")
    make_server_cert(folder, "foreign", "other-ca", "127.0.0.1")
    # mosquitto started as root reads these as its own user: throwaway test keys, world-readable.
    os.chmod(folder, 0o755)
    for name in os.listdir(folder):
        os.chmod(os.path.join(folder, name), 0o644)
    yield lambda name: os.path.join(folder, name)
    shutil.rmtree(folder, ignore_errors=True)


def tls_listener(certs, server):
    return {
        "cafile": certs("ca.pem"),
        "certfile": certs(server + ".pem"),
        "keyfile": certs(server + ".key"),
    }


@pytest.fixture(scope="module")
def tls_broker(certs):
    """One broker: TLS with the right name (main port), TLS with a certificate for another name,
    and plain MQTT for the test client, all on loopback."""
    misnamed_port, plain_port = free_port(), free_port()
    extra = ["listener %d 127.0.0.1" % misnamed_port]
    extra += ["%s %s" % kv for kv in tls_listener(certs, "misnamed").items()]
    extra += ["listener %d 127.0.0.1" % plain_port]
    broker = Mosquitto(
        tls=tls_listener(certs, "server"), extra_conf="\n".join(extra) + "\n"
    ).start()
    wait_port(plain_port)
    yield broker, misnamed_port, plain_port
    broker.close()


def tls_config(services, port, **mqtt):
    _, ntp, ip = services
    return base_config(
        port, ntp.port, ip.port, mqtt=dict({"ssl": True, "ca_file": "ca.pem"}, **mqtt)
    )


def test_tls_with_the_brokers_ca_connects_and_works(services, certs, tls_broker):
    broker, _, plain_port = tls_broker
    client = Client(plain_port)
    m = client.mark()
    with open(certs("ca.pem"), "rb") as f:
        sim = Sim(tls_config(services, broker.port), files={"ca.pem": f.read()})
    try:
        client.wait_for(state("GP16", 0), since=m, timeout=40)  # over the TLS-only port
        accepted(sim, client, {"GP16": 1}, OPEN, 1)
        assert "TLS" not in sim.log()
    finally:
        client.close()
        sim.stop()


@pytest.mark.parametrize(
    "ca, listener, reason",
    [
        ("other-ca.pem", "main", "TLS: The certificate is not correctly signed by the trusted CA"),
        (
            "ca.pem",
            "misnamed",
            "TLS: The certificate Common Name (CN) does not match with the expected CN",
        ),
    ],
)
def test_tls_refuses_a_broker_it_cannot_verify(services, certs, tls_broker, ca, listener, reason):
    broker, misnamed_port, plain_port = tls_broker
    client = Client(plain_port)
    with open(certs(ca), "rb") as f:
        sim = Sim(
            tls_config(services, broker.port if listener == "main" else misnamed_port),
            files={"ca.pem": f.read()},
        )
    try:
        wait_log(sim, "connect failed (1): OSError('%s" % reason)  # a clear error
        client.send({"GP16": 1})
        time.sleep(1)
        assert sim.proc.poll() is None, sim.log()  # and it keeps trying
        assert not [line for _, line in sim.outputs if line.startswith("GP")]
        assert [p for _, p in client.messages] == [b'{"GP16": 1}']  # nothing from the device
    finally:
        client.close()
        sim.stop()


def test_unverified_tls_only_when_the_config_says_so(services, tls_broker):
    _, misnamed_port, plain_port = tls_broker
    client = Client(plain_port)
    m = client.mark()
    sim = Sim(tls_config(services, misnamed_port, ca_file="", tls_insecure=True))
    try:
        client.wait_for(state("GP16", 0), since=m, timeout=40)
        assert "TLS without certificate verification (mqtt.tls_insecure)" in sim.log()
    finally:
        client.close()
        sim.stop()


def test_tls_without_a_ca_file_is_a_config_error(services):
    output = config_error_output(Sim(tls_config(services, free_port(), ca_file="")))
    assert "mqtt.ca_file: required when mqtt.ssl is true" in output, output


def test_the_device_reconnects_once_the_broker_shows_a_valid_certificate_again(services, certs):
    """A failed certificate check on a reconnect must not end mqtt_as's reconnect loop."""
    live = tempfile.mkdtemp(prefix="tinyctrl-tls-live-")
    os.chmod(live, 0o755)

    def show(server):  # the certificate and key the broker presents from its next start
        for ext in (".pem", ".key"):
            shutil.copy(certs(server + ext), os.path.join(live, "broker" + ext))

    show("server")
    plain_port = free_port()
    broker = Mosquitto(
        tls={
            "cafile": certs("ca.pem"),
            "certfile": os.path.join(live, "broker.pem"),
            "keyfile": os.path.join(live, "broker.key"),
        },
        extra_conf="listener %d 127.0.0.1\n" % plain_port,
    ).start()
    wait_port(plain_port)
    client = Client(plain_port)
    with open(certs("ca.pem"), "rb") as f:
        sim = Sim(tls_config(services, broker.port), files={"ca.pem": f.read()})
    try:
        client.wait_for(state("GP16", 0), timeout=40)
        client.close()
        broker.stop()
        show("foreign")  # same name, another CA
        broker.start()
        end = time.monotonic() + 40
        with open(os.path.join(broker.dir, "log"), "rb") as log:
            while b"alert unknown ca" not in log.read():
                assert time.monotonic() < end, "the device never tried the foreign certificate"
                time.sleep(0.2)
        broker.stop()
        show("server")
        broker.start()
        wait_port(plain_port)
        client = Client(plain_port)
        m = client.mark()
        client.wait_for(state("GP16", 0), since=m, timeout=40)
        accepted(sim, client, {"GP16": 1}, OPEN, 1)
    finally:
        client.close()
        sim.stop()
        broker.close()
        shutil.rmtree(live, ignore_errors=True)


# ---- floods, burnout, getip, the device's name (a rig with tight guards)

TIGHT_TOPIC, KEY_TIGHT = "home/tight", new_key()


@pytest.fixture(scope="module")
def tight(services):
    """publish_max 20 (5 error lines per 10 s of each kind), 3 changes a minute, one violation
    locks; GP17 needs KEY_TIGHT. Its own topic and client id, beside the main rig."""
    broker, ntp, ip = services
    client = Client(broker.port, topic=TIGHT_TOPIC, client_id="tight-tester")
    m = client.mark()
    sim = Sim(
        base_config(
            broker.port,
            ntp.port,
            ip.port,
            mqtt={"topic": TIGHT_TOPIC, "client_id": "pico-tight"},
            mfa={"pins": {"17": [KEY_TIGHT]}},
            guard={
                "cooldown_s": 0.3,
                "max_changes": 3,
                "window_s": 60,
                "max_violations": 1,
                "publish_max": 20,
                "publish_window_s": 10,
            },
        )
    )
    client.wait_for(state("GP16", 0), since=m, timeout=40)
    yield sim, client, ip
    client.close()
    sim.stop()


def test_a_relay_locked_by_the_burnout_guard_can_still_be_switched_off(tight):
    """Finding 6: three changes fill the window, the fourth is a violation and locks GP16 while
    it is on; off is still allowed, on is not."""
    sim, client, _ = tight
    for v in (1, 0, 1):
        time.sleep(0.4)
        client.send({"GP16": v})
        sim.wait_pin(16, v)
    time.sleep(0.4)
    m = client.mark()
    client.send({"GP16": 0})
    client.wait_for(text("Error: GP16 locked after 1 burnout violations"), since=m)
    assert sim.pin(16) == 1
    client.send({"GP16": 0})
    sim.wait_pin(16, 0)
    m = client.mark()
    client.send({"GP16": 1})
    client.wait_for(text("Error: GP16 locked after 1 burnout violations"), since=m)
    time.sleep(0.3)
    assert sim.pin(16) == 0


def test_getip_is_rate_limited(tight):
    """Finding 7: each getip is a DNS query and a TLS handshake on a Pico W."""
    sim, client, ip = tight
    before = ip.requests
    m = client.mark()
    client.send({"CMD": "getip"})
    client.wait_for(lambda p: b'"IP"' in p, since=m)
    m = client.mark()
    for i in range(5):
        client.send({"CMD": "getip"})
    line = client.wait_for(text("Error: getip was asked"), since=m).decode()
    assert re.match(r"Error: getip was asked \d+s ago; try again in \d+s$", line), line
    time.sleep(1)
    assert ip.requests == before + 1


def test_a_flood_of_garbage_does_not_hide_failed_authentications(tight):
    """Finding 5: thirty invalid messages with three wrong codes among them."""
    sim, client, _ = tight
    m = client.mark()
    wrong = wrong_code(KEY_TIGHT)
    for i in range(30):
        client.send({"MFA": wrong, "GP17": 1} if i % 10 == 9 else b"not json %d" % i)
    client.wait_for(lambda p: p.startswith(DENIED + b" (locked for"), since=m)
    time.sleep(1)
    lines = [p for _, p in client.messages[m:] if p.startswith(b"Error:")]
    assert [p for p in lines if p.startswith(DENIED)] == [DENIED, DENIED, DENIED + LOCKED % 30], (
        lines
    )
    assert len(lines) <= 3 + 5, lines  # the garbage still has its budget
    assert sim.pin(17) == 0


def test_the_device_never_publishes_its_client_id(tight):
    """Finding 2: "FROM" carries the device's name; the client id (which would let anyone with
    broker credentials take the device's place) is in no message, not even its last will."""
    sim, client, _ = tight
    client.send({"CMD": "stats"})
    client.wait_for(text("Uptime="))
    sim.proc.kill()  # a power cut: the broker publishes the last will
    client.wait_for(lambda p: b'"STATUS"' in p, timeout=30)
    payloads = [p for _, p in client.messages]
    assert not [p for p in payloads if b"pico-tight" in p], payloads
    kinds = set()
    for obj in client.device_json():
        assert obj["FROM"] == NAME, obj
        kinds.update(k for k in ("NOTIFY", "IP", "STATUS", "GP16") if k in obj)
    assert kinds == {"NOTIFY", "IP", "STATUS", "GP16"}, kinds


# ---- the clock (before the first sync, resets, NTP steps)

CLOCK_TOPIC, KEY_CLOCK, CLOCK_SIGNER = (
    "home/clock",
    new_key(),
    base64.b64encode(os.urandom(18)).decode(),
)
CLOCK_LOCKOUT_S = 20


@pytest.fixture(scope="module")
def clock_rig(services):
    """A device whose NTP server is down at first and can step: GP16 needs KEY_CLOCK, GP17 a
    signature. Yields a function that starts it (again, after a power cut)."""
    broker, _, ip = services
    ntp = NtpServer()
    ntp_port = ntp.port
    ntp.close()  # down until the test brings it up
    cfg = base_config(
        broker.port,
        ntp_port,
        ip.port,
        mqtt={"topic": CLOCK_TOPIC, "client_id": "pico-clock"},
        mfa={"pins": {"16": [KEY_CLOCK]}, "max_expired_codes": 5},
        sign={"keys": {"clock": CLOCK_SIGNER}, "pins": {"17": ["clock"]}, "window_s": WINDOW_S},
        guard={"auth_failures": AUTH_FAILURES, "auth_lockout_s": CLOCK_LOCKOUT_S},
        ntp={"force_wait_s": 0},
    )
    client = Client(broker.port, topic=CLOCK_TOPIC, client_id="clock-tester")
    state_ = {"sims": [], "ntp": None, "ntp_port": ntp_port, "client": client}

    def boot():
        m = client.mark()
        sim = Sim(cfg)
        state_["sims"].append(sim)
        client.wait_for(state("GP16", 0), since=m, timeout=40)
        return sim

    state_["boot"] = boot
    yield state_
    client.close()
    for sim in state_["sims"]:
        sim.stop()
    if state_["ntp"]:
        state_["ntp"].close()


def test_a_code_seen_before_the_clock_is_synced_is_spent(clock_rig):
    """Finding 1: the device cannot check a code before its first NTP sync; the attacker who
    read it must not use it once the clock is synced."""
    sim, client = clock_rig["boot"](), clock_rig["client"]
    code = totp_now(KEY_CLOCK)
    assert refused(sim, client, {"MFA": code, "GP16": 1}, 16) == DENIED
    clock_rig["ntp"] = NtpServer(port=clock_rig["ntp_port"])
    assert reply_to(client, {"CMD": "ntp"}).startswith(b"Info: clock synced")
    assert refused(sim, client, {"MFA": code, "GP16": 1}, 16) == DENIED


def test_codes_and_signatures_are_not_replayed_after_a_watchdog_reset(clock_rig):
    """Finding 9: a reset loses RAM; what was used just before must not work just after."""
    sim, client = clock_rig["sims"][-1], clock_rig["client"]
    codes, signer = Codes(), Signer()
    codes.synced()
    signer.synced()
    used_code = {"MFA": codes.fresh(KEY_CLOCK), "GP16": 1}
    accepted(sim, client, used_code, 16, 1)
    used_sig = sign.sign(CLOCK_SIGNER, CLOCK_TOPIC, {17: 1}, signer.next_ts())
    accepted(sim, client, used_sig, 17, 1)
    # As a phone and a scheduler with synced clocks make them: the code of the current step,
    # the time stamp of now (not ahead: that one gap is in SECURITY.md).
    while time.time() < max(codes.last_step[KEY_CLOCK] * 30, used_sig["TS"]) + 1:
        time.sleep(0.1)
    sim.send("RESET")
    wait_log(sim, "clock synced", 2)
    assert refused(sim, client, dict(used_code), 16) == DENIED
    assert refused(sim, client, used_sig, 17) == DENIED
    signer.synced()
    accepted(sim, client, sign.sign(CLOCK_SIGNER, CLOCK_TOPIC, {17: 1}, signer.next_ts()), 17, 1)
    clock_rig["used"] = (used_code, used_sig, signer)


def test_codes_and_signatures_are_not_replayed_after_a_power_cut(clock_rig):
    sim, client = clock_rig["sims"][-1], clock_rig["client"]
    used_code, _, signer = clock_rig["used"]
    used_sig = sign.sign(CLOCK_SIGNER, CLOCK_TOPIC, {17: 0}, signer.next_ts())
    accepted(sim, client, used_sig, 17, 0)
    while time.time() < used_sig["TS"] + 1:
        time.sleep(0.1)
    sim.proc.kill()
    sim.proc.wait(5)
    sim = clock_rig["boot"]()
    wait_log(sim, "clock synced")
    assert refused(sim, client, used_sig, 17) == DENIED
    assert refused(sim, client, used_code, 16) == DENIED


def test_lockouts_run_on_the_monotonic_clock(clock_rig):
    """Finding 10: an NTP step (here forced with {"CMD": "ntp"}) neither ends nor stretches a
    lockout."""
    sim, client, ntp = clock_rig["sims"][-1], clock_rig["client"], clock_rig["ntp"]
    locked_at = lock(sim, client, {"GP17": 1}, 17)
    ntp.offset = 3600  # an hour ahead: a wall-clock lockout would be over
    assert reply_to(client, {"CMD": "ntp"}).startswith(b"Info: clock synced")
    request = sign.sign(CLOCK_SIGNER, CLOCK_TOPIC, {17: 1}, int(time.time()) + 3600)
    line = refused(sim, client, request, 17)
    assert b"(locked for" in line, line
    ntp.offset = -3600  # an hour back: a wall-clock lockout would last an hour longer
    assert reply_to(client, {"CMD": "ntp"}).startswith(b"Info: clock synced")
    time.sleep(max(0, locked_at + CLOCK_LOCKOUT_S + 0.5 - time.monotonic()))
    assert refused(sim, client, {"GP17": 1}, 17) == DENIED  # refused, but no longer locked
