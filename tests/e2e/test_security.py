"""Issue 5 end to end: the real controller on the MicroPython unix port, a loopback mosquitto.

TOTP codes are used once (also after a reconnect); a grant covers its key's pins, its time and
one request; an inline code authorises its own message only; signed commands (tools/sign.py) are
accepted once and refused when replayed, stale or tampered; each pin requires what config.json
says; guessing locks a pin for longer each time; TLS verifies the broker's certificate and name;
config errors never echo a secret."""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import leakcheck
import pytest
import sign
from services import Mosquitto, free_port, wait_port
from simharness import DEVICE, KEY_A, KEY_B, TOPIC, Client, Sim, base_config, state, totp_now

DENIED = b"Error: MFA validation failed, GPIO cannot be set"
LOCKED = b" (locked for %ds after repeated failures)"
GRANT_S, WINDOW_S, AUTH_FAILURES, LOCKOUT_S = 3, 30, 3, 3
SIGN_TOOL = os.path.join(os.path.dirname(os.path.abspath(sign.__file__)), "sign.py")


def new_key():
    """A Base32 TOTP key of this run only, so no test spends another's codes."""
    return base64.b32encode(os.urandom(20)).decode()


KEY_PORCH, KEY_LOCK, KEY_REPLAY, KEY_EXPIRY = new_key(), new_key(), new_key(), new_key()
SCHEDULER = base64.b64encode(os.urandom(18)).decode()
OPEN, LIGHT, GARAGE, SPRINKLER, PORCH, LOCKABLE, REPLAYED, EXPIRING = 16, 17, 18, 19, 20, 21, 2, 3


def secured_config(broker_port, ntp_port, ip_port):
    """GP16 open; GP17 TOTP A or B; GP18 (garage, momentary) TOTP A; GP19 signed by the
    scheduler; GP20 TOTP or signed; GP21, GP2, GP3 each with a key of their own."""
    return base_config(
        broker_port, ntp_port, ip_port,
        mqtt={"user": "tinyctrl", "password": "broker-secret-pw"},
        gpio={"relay": [OPEN, LIGHT, SPRINKLER, PORCH, LOCKABLE, REPLAYED, EXPIRING],
              "momentary": {str(GARAGE): 1}, "contact": [], "notify": []},
        mfa={"pins": {str(LIGHT): [KEY_A, KEY_B], str(GARAGE): [KEY_A], str(PORCH): [KEY_PORCH],
                      str(LOCKABLE): [KEY_LOCK], str(REPLAYED): [KEY_REPLAY], str(EXPIRING): [KEY_EXPIRY]},
             "grant_s": GRANT_S, "max_expired_codes": 5},
        sign={"keys": {"scheduler": SCHEDULER}, "pins": {str(SPRINKLER): ["scheduler"], str(PORCH): ["scheduler"]},
              "window_s": WINDOW_S},
        guard={"auth_failures": AUTH_FAILURES, "auth_lockout_s": LOCKOUT_S},
    )


class Codes:
    """Hands out codes the device will take: it accepts each key's time step once and never one
    older than the newest it accepted (RFC 6238 5.2), from 5 steps back (max_expired_codes)."""

    def __init__(self):
        self.last_step = {}

    def fresh(self, key):
        while True:
            now = time.time()
            step = int(now // 30)
            # 4 back, not 5: the device's clock may already be in the next step.
            first = max(step - 4, self.last_step.get(key, -1) + 1)
            if first <= step:
                self.last_step[key] = first
                return totp_now(key, at=first * 30 + 1)
            time.sleep((step + 1) * 30 - now + 0.5)


class Signer:
    """Signed requests with strictly increasing time stamps, as the device requires per key."""

    def __init__(self):
        self.last_ts = 0

    def next_ts(self):
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


def wait_log(sim, fragment, count=1, timeout=30, poll=0.1):
    end = time.monotonic() + timeout
    while sim.log().count(fragment) < count:
        if time.monotonic() > end:
            raise AssertionError("%r not logged %d times; log ends:\n%s" % (fragment, count, sim.log()[-1500:]))
        time.sleep(poll)


def moves_since(sim, since, pin):
    return [line for _, line in sim.outputs[since:] if line.startswith("GP%d=" % pin)]


def reply_to(client, payload, timeout=10):
    """Send a request; the device's first text line after it (Error: or Info:)."""
    m = client.mark()
    client.send(payload)
    return client.wait_for(lambda p: p.startswith(b"Error:") or p.startswith(b"Info:"), since=m, timeout=timeout)


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
    client = Client(broker.port)
    m = client.mark()
    sim = Sim(secured_config(broker.port, ntp.port, ip.port))
    client.wait_for(state("GP16", 0), since=m, timeout=40)
    wait_log(sim, "clock synced")  # codes and signatures need the wall clock
    yield sim, client, Codes(), Signer()
    client.close()
    sim.stop()


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
    assert refused(sim, client, {"GP17": flip(sim, LIGHT)}, LIGHT) == DENIED  # first request took it
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
    accepted(sim, client, {"MFA": codes.fresh(KEY_A), "GP17": flip(sim, LIGHT)}, LIGHT, flip(sim, LIGHT))
    assert refused(sim, client, first, LIGHT) == DENIED  # replayed word for word


# ---- signed commands

def test_a_signed_request_is_accepted_once(rig):
    sim, client, _, signer = rig
    # The first request comes from the documented command line.
    out = subprocess.run([sys.executable, SIGN_TOOL, "--topic", TOPIC, "--ts", str(signer.next_ts()), "GP19=1"],
                         env=dict(os.environ, TINYCTRL_SIGN_KEY=SCHEDULER), capture_output=True, text=True, check=True)
    on = json.loads(out.stdout)
    assert set(on) == {"GP19", "TS", "SIG"} and SCHEDULER not in out.stdout + out.stderr
    accepted(sim, client, on, SPRINKLER, 1)
    accepted(sim, client, signer.request({SPRINKLER: 0}), SPRINKLER, 0)
    assert refused(sim, client, on, SPRINKLER) == DENIED


def test_a_stale_or_future_signed_request_is_refused(rig):
    sim, client, _, signer = rig
    for ts in (int(time.time()) - 2 * WINDOW_S, int(time.time()) + 2 * WINDOW_S):
        assert refused(sim, client, signer.request({SPRINKLER: flip(sim, SPRINKLER)}, ts=ts), SPRINKLER) == DENIED
        # The same request signed now is accepted: only the time stamp was wrong.
        accepted(sim, client, signer.request({SPRINKLER: flip(sim, SPRINKLER)}), SPRINKLER, flip(sim, SPRINKLER))


TAMPERINGS = [
    ("value changed", lambda req: dict(req, GP19=1 - req["GP19"])),
    ("pin added", lambda req: dict(req, GP20=1)),
    ("signature altered", lambda req: dict(req, SIG=req["SIG"][:-1] + ("0" if req["SIG"][-1] != "0" else "1"))),
    ("time stamp moved", lambda req: dict(req, TS=req["TS"] + 1)),
    ("signed for another topic", lambda req: sign.sign(SCHEDULER, "home/other", {SPRINKLER: req["GP19"]}, req["TS"])),
    ("signed with an unknown key", lambda req: sign.sign(new_key(), TOPIC, {SPRINKLER: req["GP19"]}, req["TS"])),
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
    assert refused(sim, client, {"MFA": codes.fresh(KEY_A), "GP19": flip(sim, SPRINKLER)}, SPRINKLER) == DENIED
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
            assert refused(sim, client, {"MFA": wrong_code(KEY_LOCK), "GP21": 1}, LOCKABLE) == DENIED
        assert refused(sim, client, {"MFA": wrong_code(KEY_LOCK), "GP21": 1}, LOCKABLE) == DENIED + LOCKED % lockout
        locked_at = time.monotonic()
        lock_ends.append(locked_at + lockout)
        # Even the correct code is refused while locked, and not used up.
        assert b"(locked for" in refused(sim, client, correct, LOCKABLE)
        accepted(sim, client, {"GP16": flip(sim, OPEN)}, OPEN, flip(sim, OPEN))  # other pins work
        time.sleep(max(0, locked_at + LOCKOUT_S + 0.5 - time.monotonic()))
    # The second lock outlasts the first: still locked LOCKOUT_S + 0.5 s after it began.
    assert b"(locked for" in refused(sim, client, correct, LOCKABLE)
    time.sleep(max(0, lock_ends[-1] + 0.5 - time.monotonic()))
    accepted(sim, client, correct, LOCKABLE, 1)


# ---- secrets

def test_config_errors_never_echo_a_secret(services):
    _, ntp, ip = services
    cfg = base_config(free_port(), ntp.port, ip.port,
                      mfa={"pins": {"17": ["NOT-BASE32-SECRET-0189"]}},
                      sign={"keys": {"sched": "short-secret"}, "pins": {"19": ["sched"]}})
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
    assert any("received by test client" in where for where in found_in('"FROM": "%s"' % DEVICE))
    raw = base64.b32decode(KEY_A)
    planted = [("hex", b"key=" + raw.hex().encode()), ("repr", b"key=%r" % raw),
               ("json", b'{"key": "%s"}' % KEY_A.encode()), ("clean", b"Info: MFA code accepted")]
    assert leakcheck.find_leaks([("mfa", KEY_A)], planted) == ["mfa in hex", "mfa in json", "mfa in repr"]


# ---- TLS

def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


def make_ca(folder, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=tinyctrl test %s" % name, "-keyout", os.path.join(folder, name + ".key"),
            "-out", os.path.join(folder, name + ".pem"))


def make_server_cert(folder, name, ca, host):
    """A broker certificate for `host` (CN and subjectAltName), signed by the CA `ca`."""
    key, csr, pem = (os.path.join(folder, name + ext) for ext in (".key", ".csr", ".pem"))
    ext = os.path.join(folder, name + ".ext")
    with open(ext, "w") as f:
        alt = "IP:%s,DNS:localhost" % host if host[0].isdigit() else "DNS:%s" % host
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" % alt)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=%s" % host, "-keyout", key, "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", os.path.join(folder, ca + ".pem"), "-CAkey",
            os.path.join(folder, ca + ".key"), "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
            "-days", "2", "-extfile", ext, "-out", pem)


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
    return {"cafile": certs("ca.pem"), "certfile": certs(server + ".pem"), "keyfile": certs(server + ".key")}


@pytest.fixture(scope="module")
def tls_broker(certs):
    """One broker: TLS with the right name (main port), TLS with a certificate for another name,
    and plain MQTT for the test client, all on loopback."""
    misnamed_port, plain_port = free_port(), free_port()
    extra = ["listener %d 127.0.0.1" % misnamed_port]
    extra += ["%s %s" % kv for kv in tls_listener(certs, "misnamed").items()]
    extra += ["listener %d 127.0.0.1" % plain_port]
    broker = Mosquitto(tls=tls_listener(certs, "server"), extra_conf="\n".join(extra) + "\n").start()
    wait_port(plain_port)
    yield broker, misnamed_port, plain_port
    broker.close()


def tls_config(services, port, **mqtt):
    _, ntp, ip = services
    return base_config(port, ntp.port, ip.port, mqtt=dict({"ssl": True, "ca_file": "ca.pem"}, **mqtt))


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


@pytest.mark.parametrize("ca, listener, reason", [
    ("other-ca.pem", "main", "TLS: The certificate is not correctly signed by the trusted CA"),
    ("ca.pem", "misnamed", "TLS: The certificate Common Name (CN) does not match with the expected CN"),
])
def test_tls_refuses_a_broker_it_cannot_verify(services, certs, tls_broker, ca, listener, reason):
    broker, misnamed_port, plain_port = tls_broker
    client = Client(plain_port)
    with open(certs(ca), "rb") as f:
        sim = Sim(tls_config(services, broker.port if listener == "main" else misnamed_port), files={"ca.pem": f.read()})
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
    broker = Mosquitto(tls={"cafile": certs("ca.pem"), "certfile": os.path.join(live, "broker.pem"),
                            "keyfile": os.path.join(live, "broker.key")},
                       extra_conf="listener %d 127.0.0.1\n" % plain_port).start()
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
