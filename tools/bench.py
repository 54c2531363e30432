# SPDX-License-Identifier: MIT
"""./build.sh bench [--sim] [--fleet [N]] [--uf2 PATH]: speed and memory figures.

Prints, on the simulator (the controller on the MicroPython unix port) with a loopback broker,
p50 and p99 over SIM_RUNS runs each (`--sim`: only these; they need no firmware):
- command published -> pin moved, command -> its echo (the state message), contact edge ->
  its state message (targets: echo p99 <= 10 ms, contact p99 <= 40 ms).

Prints, in emulator time (the RP2040 model runs at 125 MHz, much slower than real time):
- free heap with the controller running and subscribed, against the same firmware at an idle
  REPL with the controller's modules imported (target: running it costs at most 12 KB), and
  what importing those modules holds;
- microseconds per TOTP code, C module and Python fallback, and one MFA check against two keys
  with the default window (targets: at most 250 us per code, at most 3 ms for two keys);
- time from reset to subscribed, plain and over verified TLS;
- TLS handshake time and the heap a TLS session holds;
- what Home Assistant discovery costs: the announcement's size and the heap its building takes
  (the controller above runs with discovery on, so its figure includes the rest);
- UF2 size, the image in its slot and the filesystem region;
- a firmware update to the image one version newer (`./build.sh next`; skipped without it):
  the transfer's rate, the heap halfway through it, the manifest's signature check, restart to
  confirmed, and the downtime (last message of the old image to the first of the new);
- the same three latencies as on the simulator, over --emu-runs runs each, end to end and the
  device's own part (from the command's frame at the board's Wi-Fi chip to the answer's frame
  leaving it), and a local input's edge -> its relay's pin (a wall rocker in `local.inputs`,
  `toggle`: debounce included).

`--fleet [N]` (only this): N simulated devices (100 by default) on one loopback mosquitto
(tests/support/fleet.py): p50 and p99 of command -> echo, one device at a time and to all at
once, the reconnect times and their spread after the broker restarts, RSS and CPU per device.

Figures only: nothing here asserts a timing. The emulated boards run in their own network
namespace, as the emulator tests do (tests/support/emu/).
"""

import argparse
import json
import math
import pathlib
import re
import sys
import tempfile
import threading
import time

# The emulator harness and the simulator's are test machinery (tests/support), which tools/
# builds on and which never imports tools/ (HACKING.md).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "support"))

from emu.configs import device_config, tls_mqtt_config  # noqa: E402
from emu.image import DEFAULT_UF2, filesystem_region, uf2_flash  # noqa: E402
from emu.runner import start_isolated  # noqa: E402
from emu.snippets import TLS_HANDSHAKES, handshake_rows  # noqa: E402
from emu.topic_client import TopicClient  # noqa: E402
from emu.updates import NEXT_UF2, Updater  # noqa: E402
from deps import ensure_debian_packages  # noqa: E402
from netns import unshare_available  # noqa: E402
from tinyctrl import protocol, update  # noqa: E402

TOPIC = "tinyctrl/bench"
HEAP_TARGET = 12 * 1024
CODE_TARGET_US = 250
TWO_KEYS_TARGET_US = 3000
DEFAULT_MAX_EXPIRED = 5  # the seed's default window: 5 earlier codes, the current one, one ahead
SIM_RUNS = 100
EMU_RUNS = 20
ECHO_TARGET_MS = 10
CONTACT_TARGET_MS = 40
# Latency runs change one relay and one contact back and forth, at the pace of a user's double
# tap (RUN_GAP_S), then both relays with two commands back to back (a Home Assistant scene sends
# one message per relay). Both relays are in gpio.notify: two QoS 1 messages per change, each
# waiting for its PUBACK, as users run them. The guard lets that pace through.
LATENCY_GUARD = {
    "cooldown_s": 0.1,
    "max_changes": 10000,
    "window_s": 60,
    "max_violations": 3,
    "publish_max": 400,
    "publish_window_s": 10,
}
RUN_GAP_S = 0.15
RELAY, CONTACT = 16, 1  # as in tests/emu/scenarios.py
SCENE = (16, 17)
ROCKER = 4  # a local input toggling RELAY (local.inputs)
LOCAL = {"inputs": {str(ROCKER): {"relay": RELAY, "mode": "toggle"}}, "debounce_ms": 50}
TLS_CYCLES = 3

# Heap of the firmware at an idle REPL: forget every module the boot imported and the globals
# the frozen main.py left in the REPL's namespace (it ran there and stopped for lack of
# config.json; its globals hold modules too), so only what the REPL itself holds remains; then
# what the running controller's modules hold once imported (frozen code stays in flash; their
# globals, classes and functions take heap), the baseline the 12 KB target was set against.
# The modules are those a running board had loaded (some load on first use: asyncio's lock,
# mqtt_as's MQTT 5 properties), so the running cost left is the controller's own state.
IDLE_HEAP = """
import sys
for name in list(sys.modules):
    del sys.modules[name]
left = globals()
for name in list(left):
    if name not in ("sys", "left", "__name__"):
        del left[name]
del left, name
import gc
gc.collect()
free, idle = gc.mem_free(), gc.mem_alloc()
for name in {modules!r}:
    __import__(name)
gc.collect()
print(free, idle, gc.mem_alloc())
"""

TOTP_TIMING = """
import time, _tinyctrl
from tinyctrl import totp
key, other_key = bytes(range(20)), bytes(range(20, 40))
def per_call_us(fn, n):
    t = time.ticks_us()
    for i in range(n):
        fn(i)
    return time.ticks_diff(time.ticks_us(), t) / n
loop = per_call_us(lambda i: None, 200)  # the measuring loop's own cost, included below
c = per_call_us(lambda i: _tinyctrl.hotp(key, i, 6), 200)
py = per_call_us(lambda i: totp._hotp_py(key, i), 3)
# A wrong code checks every code in the window, for each of the two keys: the worst case.
two = per_call_us(lambda i: [_tinyctrl.totp_match(k, 1000000, 50000000 + i, {back}, 1)
                             for k in (key, other_key)], 50)
print(loop, c, py, two)
"""

# Home Assistant discovery: heap held by the payload (one copy) and allocated while
# building it (the pieces are garbage at once), with the bench board's pins; and what stays
# held once the announcement is let go (Announcer.run drops it after the publish).
DISCOVERY_HEAP = """
import gc, json
from tinyctrl import config, homeassistant
cfg = config.validate(json.loads({cfg!r}))
gc.collect()
before = gc.mem_alloc()
p = homeassistant.payload(cfg, "tinyctrl-emu", "tinyctrl-e6614103e7000000",
                          ("uptime", "rssi", "temperature"))
built = gc.mem_alloc()
gc.collect()
held = gc.mem_alloc()
n = len(p)
p = None
gc.collect()
print(n, built - before, held - before, gc.mem_alloc() - before)
"""

FS_FREE = """
import os
s = os.statvfs("/")
print(s[0] * s[2], s[0] * s[4])
"""


def host_figures(uf2):
    flash = uf2_flash(uf2)
    fs_start, fs_size = filesystem_region(flash)
    # A UF2 programs exactly the bootloader and the image, in 256-byte blocks.
    image = len(flash) - update.APP_START
    return {
        "uf2_bytes": pathlib.Path(uf2).stat().st_size,
        "firmware_bytes": image,
        "fs_start": fs_start,
        "fs_bytes": fs_size,
        "slot_unused": update.SLOT_BYTES - image,
    }


# ---- latency: command -> pin, command -> echo, contact edge -> publish


def percentile(values, q):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))]


def is_state(payload, pin, value):
    said = protocol.read_output(payload, "GP")
    return bool(said) and said[0] == "state" and said[1].get(pin) == value


def latency_runs(dut, runs):
    """Seconds per run of each latency, in `dut`'s time (a SimulatorLatency or an
    EmulatedLatency): a command that moves the relay, a scene's commands to both relays back to
    back, then contact edges. An EmulatedLatency's are the device's part plus the broker's
    legs (see there), and it fills its `at_chip` with the device's part alone."""
    out = {"command_pin": [], "command_echo": [], "scene_echo": [], "contact_publish": []}

    def note(key, end, start):
        if dut.at_chip is None:
            out[key].append(end - start)
        else:  # the device's part in emulated time, the broker's legs in the PC's
            dut.at_chip.setdefault(key, []).append(dut.last_at_chip)
            out[key].append(dut.last_at_chip + dut.last_legs)

    for i in range(runs):
        value = (i + 1) % 2
        since = dut.mark()
        sent = dut.now()
        dut.command(RELAY, value)
        note("command_pin", dut.moved(since, RELAY, value), sent)
        note("command_echo", dut.published(since, RELAY, value), sent)
        dut.pause(RUN_GAP_S)
    if runs % 2:  # RELAY is on: the scenes start with both relays off, so each command moves
        since = dut.mark()
        dut.command(RELAY, 0)
        dut.published(since, RELAY, 0)
        dut.pause(RUN_GAP_S)
    for i in range(runs):
        value = (i + 1) % 2
        since = dut.mark()
        sent = {}
        for pin in SCENE:
            sent[pin] = dut.now()
            dut.command(pin, value)
        for pin in SCENE:
            note("scene_echo", dut.published(since, pin, value), sent[pin])
        dut.pause(RUN_GAP_S)
    for i in range(runs):
        value = (i + 1) % 2
        since = dut.mark()
        edge = dut.now()
        dut.contact(CONTACT, value)
        note("contact_publish", dut.published(since, CONTACT, value), edge)
        dut.pause(RUN_GAP_S)
    return out


class SimulatorLatency:
    """latency_runs() on the simulator, in host seconds, watched through a simharness.Client."""

    at_chip = None  # the simulator has no Wi-Fi chip

    def __init__(self, sim, client, topic):
        self.sim, self.client, self.topic = sim, client, topic

    def mark(self):
        return len(self.sim.outputs), self.client.mark()

    def now(self):
        return time.monotonic()

    def command(self, pin, value):
        self.client.mqtt.publish(self.topic, json.dumps({"GP%d" % pin: value}), qos=1)

    def moved(self, since, pin, value):
        self.sim.wait_pin(pin, value)
        line = "GP%d=%d" % (pin, value)
        return next(t for t, o in self.sim.outputs[since[0] :] if o == line)

    def published(self, since, pin, value):
        messages = since[1]
        self.client.wait_for(lambda p: is_state(p, pin, value), since=messages, timeout=10)
        return next(t for t, p in self.client.messages[messages:] if is_state(p, pin, value))

    def contact(self, pin, value):
        self.sim.contact(pin, value)

    def pause(self, seconds):
        time.sleep(seconds)


class EmulatedLatency:
    """latency_runs() on the emulated board; `arrivals` holds (emulated s, payload, host s) of
    every message `client` gets.

    It notes when each Ethernet frame passes the board's Wi-Fi chip and when the pins change,
    so `at_chip` holds each latency from the command's frame reaching the chip (or the
    contact's edge) to the pin or the answer's frame leaving it: the device's own part, in
    emulated time. The broker's legs (the command from the publish to the chip, the answer
    from the chip to the subscriber) are timed in the PC's own time: the emulator jumps
    emulated time through the guest's idle waits while the host forwards a message, so
    emulated time across a leg says nothing. A latency is the device's part plus its legs."""

    def __init__(self, board, client, arrivals):
        self.board, self.client, self.arrivals = board, client, arrivals
        self.at_chip, self.last_at_chip, self.last_legs = {}, None, None
        self.frames = []  # (emulated s, True: to the guest, the Ethernet frame, host s)
        self.levels = []  # (emulated s, gpio, its new level)
        # {pin: (emulated s, the command's payload or None for an edge, len(frames) then,
        # len(levels) then, host s)}
        self.started = {}
        bridge = board.chip.bus.nat_bridge
        to_guest, from_guest = bridge._queue, bridge.handle_outbound_ethernet_frame

        def queued(frame):
            self.frames.append((board.emulated_s(), True, bytes(frame), time.monotonic()))
            to_guest(frame)

        def sent(frame):
            self.frames.append((board.emulated_s(), False, bytes(frame), time.monotonic()))
            from_guest(frame)

        bridge._queue, bridge.handle_outbound_ethernet_frame = queued, sent
        for gpio in SCENE + (CONTACT,):
            board.mcu.gpio[gpio].add_listener(
                lambda _new, _old, g=gpio: self.levels.append(
                    (board.emulated_s(), g, board.level(g))
                )
            )

    def mark(self):
        return len(self.arrivals)

    def now(self):
        return self.board.emulated_s()

    def command(self, pin, value):
        payload = json.dumps({"GP%d" % pin: value})
        self._start(pin, payload.encode())
        self.client.publish(TOPIC, payload, qos=1)

    def _start(self, pin, payload):
        self.started[pin] = (
            self.board.emulated_s(),
            payload,
            len(self.frames),
            len(self.levels),
            time.monotonic(),
        )

    def _reached_chip(self, pin, level):
        """When the device's part began (emulated s), the frames and pin levels noted since,
        and the command's leg to the chip (host s; 0 for a contact's edge)."""
        since, payload, frames, levels, sent = self.started[pin]
        frames, levels = self.frames[frames:], self.levels[levels:]
        if payload is None:  # a contact: from its edge, as the pin saw it
            since = next((t for t, g, v in levels if g == pin and v == level), since)
            return since, frames, levels, 0.0
        since, reached = next((t, h) for t, inbound, f, h in frames if inbound and payload in f)
        return since, frames, levels, reached - sent

    def moved(self, since, pin, value):
        self.board.wait_level(pin, 1 - value, 5)  # active low
        t_in, _, levels, leg = self._reached_chip(pin, None)
        self.last_at_chip = (
            next(t for t, g, level in levels if g == pin and t >= t_in and level == 1 - value)
            - t_in
        )
        self.last_legs = leg
        return self.board.emulated_s()

    def published(self, since, pin, value):
        # Longer than the contacts' 5 s poll, so that an edge the IRQ missed shows as a figure.
        self.board.wait_until(
            lambda: any(is_state(p, pin, value) for _, p, _ in self.arrivals[since:]),
            12,
            "GP%d=%d published" % (pin, value),
        )
        arrived, payload, received = next(
            a for a in self.arrivals[since:] if is_state(a[1], pin, value)
        )
        t_in, frames, _, leg = self._reached_chip(pin, 1 - value)  # a closed contact is low
        t_out, left = next(
            (t, h) for t, inbound, f, h in frames if not inbound and t >= t_in and payload in f
        )
        self.last_at_chip = t_out - t_in
        self.last_legs = leg + received - left
        return arrived

    def contact(self, pin, value):
        self._start(pin, None)
        self.board.drive(pin, 1 - value)  # a closed contact pulls the pin low

    def pause(self, seconds):
        self.board.idle(seconds)


def local_input_runs(board, runs):
    """Emulated ms from each flip of the rocker (its pin's edge) to the relay pin's new level."""
    out, closed = [], 0
    for _ in range(runs):
        closed = 1 - closed
        flipped = 1 - board.level(RELAY)
        out.append(board.input_to_output_ms(ROCKER, 1 - closed, RELAY, flipped, 2))
        board.idle(RUN_GAP_S)
    return out


def simulator_latency(runs):
    """Seconds per run of each latency, on the simulator with a loopback broker."""
    import simharness
    from services import Mosquitto, NtpServer, PublicIpServer

    why = simharness.missing_requirements()
    if why:
        sys.exit("bench: cannot run the simulator: " + why)
    # mosquitto's default (set_tcp_nodelay false) holds a message to a subscriber for the
    # subscriber's delayed ACK, 40 ms on Linux: the broker's figure, not the device's.
    broker = Mosquitto(extra_conf="set_tcp_nodelay true\n").start()
    ntp, ip = NtpServer(), PublicIpServer()
    client = sim = None
    try:
        client = simharness.Client(broker.port, client_id="bench")
        mark = client.mark()
        sim = simharness.Sim(
            simharness.base_config(broker.port, ntp.port, ip.port, guard=LATENCY_GUARD)
        )
        client.wait_for(lambda p: is_state(p, CONTACT, 0), since=mark, timeout=40)
        time.sleep(1)
        out = latency_runs(SimulatorLatency(sim, client, simharness.TOPIC), runs)
        sim.assert_alive()
    finally:
        if sim:
            sim.stop()
        if client:
            client.close()
        ip.close()
        ntp.close()
        broker.close()
    return out


def report_latency(title, figures):
    print(title)
    rows = (
        ("command -> pin moved", "command_pin", None),
        ("command -> echo published", "command_echo", ECHO_TARGET_MS),
        ("scene: each command -> echo", "scene_echo", ECHO_TARGET_MS),
        ("contact edge -> published", "contact_publish", CONTACT_TARGET_MS),
    )
    for label, key, target in rows:
        ms = [v * 1000 for v in figures[key]]
        line = "  %-28s p50 %6.1f ms  p99 %6.1f ms  (%d runs)" % (
            label,
            percentile(ms, 0.5),
            percentile(ms, 0.99),
            len(ms),
        )
        print(line + ("  target p99 <= %d ms" % target if target else ""))


def fleet_figures(n):
    """A fleet of `n` simulators on one broker: prints its figures (module docstring)."""
    import fleet
    import simharness
    from services import Mosquitto, NtpServer, PublicIpServer

    why = simharness.missing_requirements()
    if why:
        sys.exit("bench: cannot run the simulator: " + why)
    broker = Mosquitto(extra_conf="set_tcp_nodelay true\n").start()
    ntp, ip = NtpServer(), PublicIpServer()
    observer = fleet.Observer(broker.port)
    devices = fleet.Fleet(n, broker.port, ntp.port, ip.port)
    cpu_at_start = [0.0] * n

    def ms(values):
        return "p50 %7.1f ms  p99 %7.1f ms" % (
            1000 * fleet.percentile(values, 0.5),
            1000 * fleet.percentile(values, 0.99),
        )

    try:
        up = devices.wait_up(observer, [0] * n, 60 + 3 * n)
        print(
            "  all %d up %.1f-%.1f s after starting together"
            % (n, min(up) - devices.started_at, max(up) - devices.started_at)
        )
        cpu_at_start = devices.cpu_s()
        rss = devices.rss_kb()
        idle = devices.idle_cpu_percent(10)
        print(
            "  per device: RSS %d KB (max %d KB), idle CPU %.2f%% of a core (max %.2f%%), "
            "%.2f s of CPU to come up"
            % (sum(rss) / n, max(rss), sum(idle) / n, max(idle), sum(cpu_at_start) / n)
        )
        print(
            "  command -> echo, one at a time:  " + ms(devices.command_one_at_a_time(observer, 1))
        )
        print(
            "  command -> echo, all at once:    "
            + ms(devices.command_all_at_once(observer, 0, 120))
        )
        observer.close()
        broker.stop()
        broker.start()
        restarted = time.monotonic()
        observer = fleet.Observer(broker.port)
        back = [t - restarted for t in devices.wait_up(observer, [0] * n, 120)]
        print(
            "  broker restarted: back %.1f-%.1f s after it, p50 %.1f s, spread %.1f s"
            % (min(back), max(back), fleet.percentile(back, 0.5), max(back) - min(back))
        )
        print(
            "  then all at once:                "
            + ms(devices.command_all_at_once(observer, 1, 120))
        )
        used = [b - a for a, b in zip(cpu_at_start, devices.cpu_s())]
        print("  CPU per device over the run: %.2f s" % (sum(used) / n))
        devices.assert_alive()
    finally:
        devices.stop()
        observer.close()
        ntp.close()
        ip.close()
        broker.close()


def emulated(lab, out_path, emu_runs):
    """Runs inside the namespace: writes the emulator figures as JSON to `out_path`."""
    import paho.mqtt.client as mqtt

    figures = {}
    cfg = device_config(
        topic=TOPIC, guard=LATENCY_GUARD, homeassistant={"discovery": True}, local=LOCAL
    )
    board = lab.boot(cfg)
    board.wait_for("tinyctrl: subscribed to " + TOPIC, 60)
    figures["reset_to_subscribed_s"] = board.emulated_s()

    stats = []
    arrivals = []
    got = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench")

    def on_message(_c, _u, msg):
        arrivals.append((board.emulated_s(), msg.payload, time.monotonic()))
        if msg.payload.startswith(b"Uptime="):
            stats.append(msg.payload.decode())
            got.set()

    client.on_message = on_message
    client.connect("127.0.0.1", lab.broker.port)
    client.subscribe(TOPIC, 1)
    client.loop_start()
    client.publish(TOPIC, json.dumps({"CMD": "stats"}), qos=1)
    board.wait_until(got.is_set, 5, "a stats reply")
    board.idle(1)
    board.pace_idle()  # so the broker's legs take the PC's time, not an idle jump's
    dut = EmulatedLatency(board, client, arrivals)
    figures["latency"] = latency_runs(dut, int(emu_runs))
    figures["latency_at_chip"] = dut.at_chip
    figures["local_input_ms"] = local_input_runs(board, int(emu_runs))
    # The heap once all of it ran (what loads on first use has loaded).
    got.clear()
    client.publish(TOPIC, json.dumps({"CMD": "stats"}), qos=1)
    board.wait_until(got.is_set, 5, "a stats reply")
    client.loop_stop()
    figures["stats"] = stats[-1]
    # Last on this board: the raw REPL interrupts the controller.
    modules = board.exec("import sys\nprint(' '.join(sorted(sys.modules)))").split()
    board.stop()

    board = lab.boot(None)
    board.wait_for("reset the board", 5)
    free, alloc, imported = map(int, board.exec(IDLE_HEAP.format(modules=modules), 60).split())
    figures.update(
        heap_total=free + alloc,
        idle_used=alloc,
        modules_used=imported,
        modules_loaded=len(modules),
    )
    # stats runs gc.collect() and reports used / (used + free) to 0.1 %.
    mem_pct = float(re.search(r"Mem=([0-9.]+)%", figures["stats"]).group(1))
    figures["running_used"] = round(mem_pct / 100 * figures["heap_total"])
    loop_us, c_us, py_us, two_keys_us = map(
        float, board.exec(TOTP_TIMING.format(back=DEFAULT_MAX_EXPIRED), 60).split()
    )
    figures.update(loop_us=loop_us, totp_c_us=c_us, totp_py_us=py_us, two_keys_us=two_keys_us)
    fs_total, fs_free = map(int, board.exec(FS_FREE).split())
    figures.update(fs_total=fs_total, fs_free_empty=fs_free)
    announced = device_config(topic=TOPIC, homeassistant={"discovery": True})
    size, allocated, held, after = map(
        int, board.exec(DISCOVERY_HEAP.format(cfg=json.dumps(announced)), 60).split()
    )
    figures.update(
        discovery_bytes=size,
        discovery_allocated=allocated,
        discovery_held=held,
        discovery_after=after,
    )
    board.stop()

    # Verified TLS: the controller's own parameters, a CA and certificate made here.
    lab.start_tls_broker()
    cfg["mqtt"] = tls_mqtt_config(cfg["mqtt"])
    board = lab.boot(cfg, lab.tls_files())
    board.wait_for("tinyctrl: subscribed to " + TOPIC, 60)
    figures["reset_to_subscribed_tls_s"] = board.emulated_s()
    out = board.exec(TLS_HANDSHAKES.format(cycles=TLS_CYCLES), 60 * TLS_CYCLES)
    rows = handshake_rows(out)
    if len(rows) != TLS_CYCLES or any(isinstance(r, str) for r in rows):
        raise RuntimeError("TLS handshakes failed:\n" + out)
    figures["tls"] = rows
    board.stop()
    if NEXT_UF2.is_file():
        figures["update"] = update_figures(lab)
    pathlib.Path(out_path).write_text(json.dumps(figures))


def update_figures(lab):
    """An update to the image one version newer (./build.sh next), paced as the tests pace it:
    the transfer, the heap halfway, the switch and the downtime, in emulated time; and the
    manifest's signature check on the board."""
    updater = Updater(TOPIC)
    cfg = device_config(topic=TOPIC, update={"key": updater.public_hex()})
    board = lab.boot(cfg)
    board.wait_for("tinyctrl: subscribed to " + TOPIC, 60)
    mqtt = updater.mqtt = TopicClient(lab.broker.port, board, TOPIC)
    uid, messages = updater.chunks()
    idle = mqtt.heap_share(5) / 10  # stats' Mem=, in tenths of a percent
    since = mqtt.mark()
    started = board.emulated_s()
    half = len(messages) // 2
    updater.send(messages[:half], board)
    during = mqtt.heap_share(5) / 10
    updater.send(messages[half:], board)
    received = mqtt.said("update %d received and checked" % uid, 120, since)[0]
    restart = mqtt.said("restarting to switch to", 30, since)[0]
    confirmed = mqtt.said("update %d confirmed" % uid, 120, since)[0]
    last_old = max(at for at, _t in mqtt.messages if at <= restart)
    first_new = min(at for at, _t in mqtt.messages if at > restart)
    mqtt.close()
    # Last: the raw REPL interrupts the controller. The new image checks with the same code.
    line, sig, _ = update.split_head(messages[0].split(b"\n", 1)[1])
    key = bytes.fromhex(updater.public_hex())
    verify_us = float(board.exec(ECDSA_TIMING.format(key=key, line=line, sig=sig), 30))
    board.stop()
    return {
        "image_bytes": len(updater.image),
        "chunks": len(messages),
        "transfer_s": received - started,
        "heap_idle_pct": idle,
        "heap_during_pct": during,
        "switch_s": confirmed - restart,
        "downtime_s": first_new - last_old,
        "verify_us": verify_us,
    }


# The manifest's signature check on the board: one ECDSA P-256 verification, as the receiver
# makes it (_tinyctrl.ecdsa_verify over mbedtls), the mean of 3.
ECDSA_TIMING = """
import _tinyctrl, hashlib, time
d = hashlib.sha256({line!r}).digest()
t = time.ticks_us()
ok = all(_tinyctrl.ecdsa_verify({key!r}, d, {sig!r}) for _ in range(3))
print(time.ticks_diff(time.ticks_us(), t) / 3 if ok else -1)
"""


def report(host, emu):
    kb = lambda n: "%.1f KB" % (n / 1024)  # noqa: E731
    print("Firmware")
    print("  UF2 file                      %s" % kb(host["uf2_bytes"]))
    print(
        "  image in its slot             %s (%s of the %s slot unused)"
        % (kb(host["firmware_bytes"]), kb(host["slot_unused"]), kb(update.SLOT_BYTES))
    )
    print(
        "  filesystem region             %s at flash offset 0x%x"
        % (kb(host["fs_bytes"]), host["fs_start"])
    )
    if emu is None:
        return
    print(
        "  filesystem free (empty fs)    %s of %s"
        % (kb(emu["fs_free_empty"]), kb(emu["fs_total"]))
    )
    cost = emu["running_used"] - emu["modules_used"]
    print("Heap (emulated Pico W, after gc.collect())")
    print("  heap size                     %s" % kb(emu["heap_total"]))
    print(
        "  used at an idle REPL          %s (free %s)"
        % (kb(emu["idle_used"]), kb(emu["heap_total"] - emu["idle_used"]))
    )
    print(
        "  used, controller subscribed   %s (free %s; from stats Mem=%%, +-%s)"
        % (
            kb(emu["running_used"]),
            kb(emu["heap_total"] - emu["running_used"]),
            kb(emu["heap_total"] / 2000),
        )
    )
    print(
        "  controller's modules imported %s (used %s; the %d a running board had loaded)"
        % (
            kb(emu["modules_used"] - emu["idle_used"]),
            kb(emu["modules_used"]),
            emu["modules_loaded"],
        )
    )
    print(
        "  running the controller costs  %s beyond its modules (target <= %s; Home Assistant "
        "discovery on)" % (kb(cost), kb(HEAP_TARGET))
    )
    print(
        "  discovery announcement        %d bytes; building it allocates %s, of which %s is the "
        "payload held until sent"
        % (emu["discovery_bytes"], kb(emu["discovery_allocated"]), kb(emu["discovery_held"]))
    )
    print(
        "  held after announcing         %+d bytes (payload let go, after gc.collect())"
        % emu["discovery_after"]
    )
    print(
        "MFA (emulated 125 MHz RP2040; each figure includes %.0f us of measuring loop)"
        % emu["loop_us"]
    )
    print(
        "  TOTP code, C module           %.0f us (target <= %d us)"
        % (emu["totp_c_us"], CODE_TARGET_US)
    )
    print("  TOTP code, Python fallback    %.0f us" % emu["totp_py_us"])
    print(
        "  check, 2 keys, default window %.0f us (target <= %d us)"
        % (emu["two_keys_us"], TWO_KEYS_TARGET_US)
    )
    print("Start-up")
    print("  reset to subscribed           %.1f s emulated" % emu["reset_to_subscribed_s"])
    print(
        "  reset to subscribed, TLS      %.1f s emulated (NTP first, then a verified handshake)"
        % emu["reset_to_subscribed_tls_s"]
    )
    print("  stats reply                   %s" % emu["stats"])
    tls = emu["tls"]
    ms = sorted(r["ms"] for r in tls)
    print(
        "TLS (verified, RSA 2048 certificate, emulated 125 MHz RP2040; %d handshakes)" % len(tls)
    )
    print(
        "  handshake                     %d ms median (%d..%d ms)"
        % (ms[len(ms) // 2], ms[0], ms[-1])
    )
    print(
        "  heap with a session open      +%s over before the handshake"
        % kb(max(r["during"] - r["before"] for r in tls))
    )
    print(
        "  heap after closing it         %+d bytes over %d handshakes"
        % (tls[-1]["after"] - tls[0]["before"], len(tls))
    )
    report_latency(
        "Latency (emulated Pico W: its part in emulated time, the broker's legs in the PC's)",
        emu["latency"],
    )
    report_latency(
        "Latency (the same, the device's own part: from the command's frame at its Wi-Fi chip)",
        emu["latency_at_chip"],
    )
    ms = emu["local_input_ms"]
    print(
        "  %-28s p50 %6.1f ms  p99 %6.1f ms  (%d runs; local.debounce_ms %d)"
        % (
            "local input -> relay pin",
            percentile(ms, 0.5),
            percentile(ms, 0.99),
            len(ms),
            LOCAL["debounce_ms"],
        )
    )
    if "update" in emu:
        u = emu["update"]
        print("Firmware update (emulated Pico W, to the image one version newer)")
        print(
            "  transfer                      %s in %.1f s emulated (%.1f KB/s), %d chunks"
            % (
                kb(u["image_bytes"]),
                u["transfer_s"],
                u["image_bytes"] / 1024 / u["transfer_s"],
                u["chunks"],
            )
        )
        print(
            "  heap in use                   %.1f%% idle, %.1f%% halfway through the transfer"
            % (u["heap_idle_pct"], u["heap_during_pct"])
        )
        print("  manifest signature check      %.0f ms" % (u["verify_us"] / 1000))
        print(
            "  restart to confirmed          %.1f s emulated (swap, boot, trial)" % u["switch_s"]
        )
        print(
            "  downtime                      %.1f s emulated (last message of the old image to "
            "the first of the new)" % u["downtime_s"]
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description="tinyctrl speed and memory figures")
    parser.add_argument("--uf2", default=str(DEFAULT_UF2))
    parser.add_argument(
        "--sim", action="store_true", help="only the simulator latencies (no firmware needed)"
    )
    parser.add_argument("--no-emulator", action="store_true", help="no emulated Pico W figures")
    parser.add_argument(
        "--fleet",
        type=int,
        nargs="?",
        const=100,
        metavar="N",
        help="only the figures of N simulated devices on one broker (default 100)",
    )
    parser.add_argument("--runs", type=int, default=SIM_RUNS, help="simulator runs per latency")
    parser.add_argument("--emu-runs", type=int, default=EMU_RUNS, help="emulated runs per latency")
    opts = parser.parse_args(argv)
    ensure_debian_packages("bench")
    if opts.fleet:
        print("bench: a fleet of %d simulated devices on one broker" % opts.fleet, flush=True)
        return fleet_figures(opts.fleet)
    print("bench: simulator latencies, %d runs each" % opts.runs, flush=True)
    report_latency("Latency (simulator, loopback broker)", simulator_latency(opts.runs))
    if opts.sim:
        return
    if not pathlib.Path(opts.uf2).is_file():
        sys.exit("bench: %s does not exist: run ./build.sh" % opts.uf2)
    host = host_figures(opts.uf2)
    emu = None
    if not opts.no_emulator:
        why = unshare_available()
        if why:
            sys.exit("bench: cannot run the emulator: " + why)
        print(
            "bench: booting the emulated Pico W four times; this takes several minutes",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="tinyctrl-bench-") as tmp:
            out = pathlib.Path(tmp, "figures.json")
            scenario = "%s:emulated" % pathlib.Path(__file__).resolve()
            proc = start_isolated(scenario, opts.uf2, [out, opts.emu_runs])
            if proc.wait() or not out.exists():
                sys.exit("bench: the emulator run failed (exit %s)" % proc.returncode)
            emu = json.loads(out.read_text())
    report(host, emu)


if __name__ == "__main__":
    main()
