# SPDX-License-Identifier: MIT
"""Home Assistant discovery against a real Home Assistant, run inside a private network namespace
by
tests/support/homeassistant.py (--inside): mosquitto, the simulator and `hass`, all on loopback.
Each check is reported as one JSON line; tests/ha/test_ha_live.py turns them into tests."""

import os
import re
import signal
import tempfile
import time

import homeassistant as ha_support
import simharness as sh
from services import Mosquitto, NtpServer, PublicIpServer, free_port

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
KEEPALIVE_S = 4  # the broker sends the will after 1.5 keepalives without traffic
DEVICE = "pico-test"
# Home Assistant names the entities after the device name (config "name", simharness.NAME
# "garage-pico"), never the client id: switch.garage_pico_...


def readme_yaml():
    """The manual YAML of README.md's Home Assistant section, as written there."""
    with open(README) as f:
        text = f.read()
    section = text[text.index("## Home Assistant") :]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def device_config(ports, discovery=True):
    broker, ntp, ip = ports
    return sh.base_config(
        broker,
        ntp,
        ip,
        mqtt={"keepalive": KEEPALIVE_S, "client_id": DEVICE},
        mfa={"pins": {"17": [sh.KEY_A]}},
        homeassistant={
            "discovery": discovery,
            "names": {"16": "Garage light"},
            "device_class": {"1": "garage_door", "0": "door"},
        },
    )


def number(state):
    try:
        float(state)
        return True
    except (TypeError, ValueError):
        return False


def check(report, name, fn):
    try:
        detail = fn()
        report(name, True, detail or "")
        return True
    except Exception as e:  # a failed check is a result, the next checks still run
        report(name, False, "%s: %s" % (type(e).__name__, e))
        return False


def problems_in_log(log):
    """Home Assistant log lines about MQTT or templates at WARNING or above."""
    out = []
    for line in log.splitlines():
        if re.search(r" (WARNING|ERROR|CRITICAL) ", line) and re.search(
            r"mqtt|template|value_json", line, re.I
        ):
            out.append(line)
    return out


def ids(hass):
    """Entity ids of the discovered device, by the key of their unique id."""
    found = {}
    for entity_id in hass.template("{{ integration_entities('mqtt') | join(' ') }}").split():
        dev = hass.template("{{ device_id('%s') }}" % entity_id)
        if dev and dev != "None":
            found[entity_id] = dev
    return found


def discovered(report):
    tmp = tempfile.mkdtemp(prefix="tinyctrl-ha-")
    broker = Mosquitto().start()
    ntp, ip = NtpServer(), PublicIpServer()
    ports = (broker.port, ntp.port, ip.port)
    hass = ha_support.HomeAssistant(
        os.path.join(tmp, "config"), broker.port, free_port(), extra_yaml=readme_yaml()
    )
    sim = sh.Sim(device_config(ports))
    tester = sh.Client(broker.port, client_id="other-client")
    try:
        _run(report, hass, sim, tester, ports)
    finally:
        tester.close()
        sim.stop()
        hass.stop()
        broker.close()
        ntp.close()
        ip.close()


def _run(report, hass, sim, tester, ports):
    t = time.monotonic()
    hass.start()
    report("hass_started", True, "%.0f s" % (time.monotonic() - t))
    entities = {}

    def one_device():
        end = time.monotonic() + 60
        while time.monotonic() < end:
            entities.update(ids(hass))
            if len(entities) >= 12:
                break
            time.sleep(1)
        devices = set(entities.values())
        assert len(devices) == 1, "devices %s for %s" % (devices, sorted(entities))
        names = sorted(entities)
        for wanted in (
            "switch.garage_pico_garage_light",
            "switch.garage_pico_gp17",
            "binary_sensor.garage_pico_gp17",
            "button.garage_pico_gp18",
            "binary_sensor.garage_pico_gp1",
            "sensor.garage_pico_temperature",
            "sensor.garage_pico_wi_fi_signal",
            "sensor.garage_pico_uptime",
        ):
            assert (wanted in names) == (wanted != "switch.garage_pico_gp17"), (wanted, names)
        ident = hass.template("{{ device_attr('%s', 'identifiers') }}" % devices.pop())
        assert "tinyctrl-74696e7973696d31" in ident, ident
        return "%d entities: %s" % (len(names), " ".join(names))

    check(report, "one_device", one_device)
    light = "switch.garage_pico_garage_light"
    door = "binary_sensor.garage_pico_gp1"
    mfa = "binary_sensor.garage_pico_gp17"
    button = "button.garage_pico_gp18"

    def switch_moves_relay():
        hass.wait_state(light, "off", 30)
        hass.call("switch", "turn_on", entity_id=light)
        sim.wait_pin(16, 1, timeout=10)
        hass.wait_state(light, "on", 10)
        return "GP16 on"

    check(report, "switch_turn_on_moves_relay", switch_moves_relay)

    def contact_within_2s():
        hass.wait_state(door, "off", 10)
        sim.contact(1, True)
        took = hass.wait_state(door, "on", 2)
        assert hass.state(door) == "on"
        attrs = hass.api("GET", "states/" + door)["attributes"]
        assert attrs.get("device_class") == "garage_door", attrs
        return "%.2f s" % took

    check(report, "contact_in_binary_sensor_within_2s", contact_within_2s)

    def button_pulses_momentary():
        # Home Assistant skips an entity that is unavailable without a word: wait until it is not.
        hass.wait_state(button, lambda s: s not in (None, "unavailable"), 10)
        since = tester.mark()
        hass.call("button", "press", entity_id=button)
        try:
            sim.wait_pin(18, 1, timeout=10)
        except AssertionError as e:  # did the press reach the topic, and what did the device say
            seen = [p for _, p in tester.messages[since:]]
            raise AssertionError(
                "%s; on the topic since the press: %s; device log ends: %s"
                % (e, seen[-6:], sim.log()[-1500:])
            ) from None
        sim.wait_pin(18, 0, timeout=10)
        return "GP18 pulsed"

    check(report, "button_pulses_momentary_relay", button_pulses_momentary)

    def mfa_pin_not_commandable():
        assert hass.state("switch.garage_pico_gp17") is None, "GP17 announced as a switch"
        assert hass.state(mfa) == "off", hass.state(mfa)
        try:
            hass.call("homeassistant", "turn_on", entity_id=mfa)
        except Exception:
            pass
        time.sleep(2)
        assert sim.pin(17) == 0
        return "GP17 is a read-only binary_sensor"

    check(report, "mfa_pin_not_commandable", mfa_pin_not_commandable)

    def diagnostics():
        since = tester.mark()
        tester.send({"CMD": "stats"})
        hass.wait_state("sensor.garage_pico_temperature", "21.5", 10)
        hass.wait_state("sensor.garage_pico_wi_fi_signal", number, 10)
        hass.wait_state("sensor.garage_pico_uptime", number, 10)
        # The update entity: the version the stats line names, up to date, nothing to install.
        firmware = "update.garage_pico_firmware"
        hass.wait_state(firmware, "off", 10)
        attrs = hass.api("GET", "states/" + firmware)["attributes"]
        stats = tester.wait_for(lambda p: p.startswith(b"Uptime="), since, 10).decode()
        running = re.search(r", Version=([^,]+)", stats).group(1)
        assert attrs.get("installed_version") == running, (attrs, stats)
        assert not attrs.get("supported_features", 0) & 1, attrs  # no INSTALL
        return "temperature %s, Wi-Fi signal %s, uptime %s; %s: installed %s" % (
            *(
                hass.state("sensor.garage_pico_" + k)
                for k in ("temperature", "wi_fi_signal", "uptime")
            ),
            firmware,
            attrs.get("installed_version"),
        )

    check(report, "diagnostic_sensors", diagnostics)

    def requests_are_not_states():
        # Another client's request while the device is paused: Home Assistant must not take it
        # for the relay's state; the device applies it once resumed, and reports it.
        hass.wait_state(light, "on", 5)
        os.kill(sim.proc.pid, signal.SIGSTOP)
        try:
            tester.send({"GP16": 0})
            time.sleep(1.5)
            assert hass.state(light) == "on", hass.state(light)
        finally:
            os.kill(sim.proc.pid, signal.SIGCONT)
        sim.wait_pin(16, 0, timeout=10)
        hass.wait_state(light, "off", 10)
        return "request ignored, then the device's state taken"

    check(report, "other_clients_requests_ignored", requests_are_not_states)

    def manual_yaml():
        hass.wait_state("switch.pico_gp16", "off", 10)
        # GP16 just changed (the previous check): the guard refuses a change within cooldown_s
        time.sleep(sim.cfg["guard"]["cooldown_s"] + 0.5)
        since = tester.mark()
        hass.call("switch", "turn_on", entity_id="switch.pico_gp16")
        try:
            sim.wait_pin(16, 1, timeout=10)
        except AssertionError as e:
            raise AssertionError(
                "%s; on the topic %s; device log %s"
                % (e, [m for _, m in tester.messages[since:]], sim.log()[-1500:])
            ) from None
        hass.wait_state("switch.pico_gp16", "on", 10)
        hass.wait_state("binary_sensor.pico_gp1", "on", 10)
        return "README's switch and binary_sensor follow the device"

    check(report, "manual_yaml_works", manual_yaml)

    def no_errors_for_text_lines():
        since = len(hass.log())
        tester.send({"CMD": "stats"})  # Uptime=... line
        tester.send({"GP17": 1})  # refused: Error: MFA validation failed
        tester.send({"GP99": 1})  # Error: GP99 is not configured
        tester.send("not json")
        tester.send({"CMD": "ntp"})  # Info: clock synced
        for prefix in ("Uptime=", "Error: MFA", "Error: GP99", "Error: request is not", "Info:"):
            tester.wait_for(sh.text(prefix), timeout=15)
        time.sleep(2)
        bad = problems_in_log(hass.log()[since:])
        assert not bad, "\n".join(bad[:6])
        bad = problems_in_log(hass.log())
        assert not bad, "\n".join(bad[:6])
        return "no MQTT or template warnings in the whole log"

    check(report, "no_errors_for_text_lines", no_errors_for_text_lines)

    watched = [light, door, mfa, "switch.pico_gp16"]

    def unavailable_when_dropped():
        sim.wifi(False)
        bound = KEEPALIVE_S * 1.5 + 6
        took = max(hass.wait_state(e, "unavailable", bound) for e in watched)
        return "%.1f s (bound %.0f s)" % (took, bound)

    check(report, "unavailable_when_device_drops", unavailable_when_dropped)

    def back_when_reconnected():
        sim.wifi(True)
        took = max(
            hass.wait_state(e, lambda s: s not in ("unavailable", None), 60) for e in watched
        )
        return "%.1f s" % took

    check(report, "available_again_after_reconnect", back_when_reconnected)

    def restart_rediscovers():
        hass.stop()
        hass.start()
        took = hass.wait_state(light, lambda s: s in ("on", "off"), 30)
        assert hass.state(door) == "on"
        return "state back %.1f s after start" % took

    check(report, "restart_rediscovers", restart_rediscovers)

    def restart_while_device_down():
        hass.stop()
        sim.wifi(False)
        time.sleep(KEEPALIVE_S * 1.5 + 2)  # the broker has sent the will
        hass.start()
        time.sleep(3)
        assert hass.state(light) == "unavailable", hass.state(light)
        sim.wifi(True)
        hass.wait_state(light, lambda s: s in ("on", "off"), 60)
        return "unavailable while down, back after the reconnect"

    check(report, "restart_while_device_down", restart_while_device_down)

    def discovery_off_removes():
        sim.stop()
        new = sh.Sim(device_config(ports, discovery=False))
        try:
            end = time.monotonic() + 60
            while hass.state(light) is not None and time.monotonic() < end:
                time.sleep(0.5)
            assert hass.state(light) is None, hass.state(light)
            assert not ids(hass), ids(hass)
        finally:
            new.stop()
        return "device removed"

    check(report, "discovery_off_removes_device", discovery_off_removes)
    bad = problems_in_log(hass.log())
    report("log_clean_at_end", not bad, "\n".join(bad[:6]))
