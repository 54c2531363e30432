# SPDX-License-Identifier: MIT
"""Local control: inputs that move relays without the broker (inputs.py), the offline
failsafe (failsafe.py) and their config keys, with a port whose pins the test drives."""

from check import raises, run_async
from test_relays import Clock, Outbox, Port
from tinyctrl import config
from tinyctrl.failsafe import Failsafe
from tinyctrl.inputs import Inputs
from tinyctrl.memory import RelayMemory
from tinyctrl.relays import Relays


class LocalPort(Port):
    def __init__(self):
        super().__init__()
        self.inputs = {}

    def ContactPin(self, gpio, handler):
        self.inputs[gpio] = Contact()
        return self.inputs[gpio]

    def EdgeFlag(self):
        return Flag()


class Contact:
    v = 0  # 1 = closed

    def value(self):
        return self.v


class Flag:
    def set(self):
        pass


INPUTS = {
    "4": {"relay": 16, "mode": "toggle"},
    "5": {"relay": 18, "mode": "press"},
    "6": {"relay": 17, "mode": "follow", "invert": True},
    "7": {"relay": 20, "mode": "press", "long": "off_group"},
}


def raw_config(**local):
    loc = {"inputs": INPUTS}
    loc.update(local)
    return {
        "wifi": {"ssid": "s"},
        "mqtt": {"server": "b", "topic": "t"},
        "gpio": {
            "relay": [16, 17, 20, 21],
            "momentary": {"18": 1},
            "contact": [0],
            "interlock": [[20, 21]],
            "interlock_mode": "switch",
        },
        "guard": {"cooldown_s": 0, "max_changes": 100},
        "local": loc,
    }


def make(**local):
    cfg = config.validate(raw_config(**local))
    port, out, clock = LocalPort(), Outbox(), Clock()
    relays = Relays(cfg, port, out, clock, RelayMemory(cfg, port))
    return Inputs(cfg, port, relays, out, clock), port, out, clock


def problems(**local):
    return raises(config.ConfigError, config.validate, raw_config(**local)).problems


def test_the_config_is_normalised_with_defaults():
    local = config.validate(raw_config())["local"]
    assert local["inputs"][4] == {"relay": 16, "mode": "toggle", "invert": False, "long": None}
    assert local["inputs"][7]["long"] == "off_group" and local["inputs"][6]["invert"] is True
    assert (local["debounce_ms"], local["long_press_ms"], local["disabled"]) == (50, 800, [])
    assert config.validate(raw_config(inputs={}))["local"]["failsafe"] == {}
    fs = config.validate(raw_config(failsafe={"17": {"after_s": 300}}))["local"]["failsafe"]
    assert fs == {17: {"after_s": 300, "state": "off"}}


def test_bad_local_keys_name_the_key():
    assert problems(inputs={"4": {"relay": 16, "mode": "toggle", "long": "off"}}) == [
        'local.inputs.4.long: only a push button (mode "press") has a long press'
    ]
    assert problems(inputs={"16": {"relay": 17}}) == [
        "local.inputs: GP16 is already a relay in gpio"
    ]
    assert problems(inputs={"4": {"relay": 0}}) == ["local.inputs.4.relay: GP0 is not a relay"]
    assert problems(inputs={"4": {"relay": 16, "mode": "hold"}}) == [
        "local.inputs.4.mode: 'hold' is not one of toggle, follow, press"
    ]
    assert problems(inputs={"4": {"mode": "toggle"}}) == ["local.inputs.4.relay: required"]
    assert problems(inputs={"4": {"relay": 16}, "04": {"relay": 17}}) == [
        "local.inputs: GP4 is listed twice"
    ]
    assert problems(failsafe={"18": {"after_s": 60}}) == [
        "local.failsafe.18: a momentary relay releases itself"
    ]
    assert problems(disabled=[0]) == ["local.disabled: GP0 is not a relay"]
    assert problems(debounce_ms=5000) == [
        "local.debounce_ms: must be a whole number of ms from 0 to 1000"
    ]


def test_a_toggle_input_counts_a_change_only_once_it_has_held():
    inputs, port, out, clock = make()
    port.inputs[4].v = 1
    inputs.step(clock.t)
    clock.t += 30
    port.inputs[4].v = 0  # a bounce, or a coil's spike: shorter than debounce_ms
    inputs.step(clock.t)
    clock.t += 100
    inputs.step(clock.t)
    assert port.levels[16] == 0 and out.lines == []
    port.inputs[4].v = 1
    assert inputs.step(clock.t) == 50  # the next step is due when the debounce ends
    clock.t += 50
    inputs.step(clock.t)
    assert port.levels[16] == 1
    assert out.lines == ["Info: GP16 on (local, GP4)"] and out.changes == [(16, 1)]
    port.inputs[4].v = 0  # a rocker: the other way toggles again
    inputs.step(clock.t)
    clock.t += 50
    inputs.step(clock.t)
    assert port.levels[16] == 0 and out.lines[-1] == "Info: GP16 off (local, GP4)"


def test_follow_inverted_and_local_control_off():
    inputs, port, out, clock = make(debounce_ms=0, disabled=[16])
    port.inputs[6].v = 1  # closed: off (invert); it was off already, nothing said
    inputs.step(clock.t)
    assert port.levels[17] == 0 and out.lines == []
    port.inputs[6].v = 0
    inputs.step(clock.t)
    assert port.levels[17] == 1 and out.lines == ["Info: GP17 on (local, GP6)"]
    port.inputs[4].v = 1  # GP16's local control is off
    inputs.step(clock.t)
    assert port.levels[16] == 0 and len(out.lines) == 1


def test_a_push_button_short_and_long_and_a_momentary_pulse():
    async def main():
        inputs, port, out, clock = make(debounce_ms=0)
        port.inputs[7].v = 1
        assert inputs.step(clock.t) == 800  # short or long: not known yet
        clock.t += 200
        port.inputs[7].v = 0
        inputs.step(clock.t)
        assert port.levels[20] == 1 and out.lines == ["Info: GP20 on (local, GP7)"]
        port.inputs[7].v = 1
        inputs.step(clock.t)
        clock.t += 800
        inputs.step(clock.t)  # held: the long action at once, the group off
        assert port.levels[20] == 0
        assert out.lines[-1] == "Info: GP20 off (local, GP7, long press)"
        clock.t += 1000
        port.inputs[7].v = 0
        inputs.step(clock.t)  # the release after a long press does nothing more
        assert port.levels[20] == 0 and len(out.lines) == 2
        port.inputs[5].v = 1  # a plain press: at once; a momentary relay is pulsed
        inputs.step(clock.t)
        assert port.levels[18] == 1 and out.lines[-1] == "Info: GP18 on (local, GP5)"

    run_async(main)


def test_a_local_move_meets_the_interlock_and_the_burnout_guard():
    cfg = raw_config(debounce_ms=0, inputs={"4": {"relay": 21, "mode": "toggle"}})
    cfg["gpio"]["interlock_mode"] = "refuse"
    cfg["guard"] = {"cooldown_s": 5, "max_changes": 100}
    cfg = config.validate(cfg)
    port, out, clock = LocalPort(), Outbox(), Clock()
    relays = Relays(cfg, port, out, clock, RelayMemory(cfg, port))
    inputs = Inputs(cfg, port, relays, out, clock)
    relays.apply({20: 1})
    port.inputs[4].v = 1
    inputs.step(clock.t)
    assert port.levels[21] == 0
    assert out.lines == ["Error: GP21 not switched on: interlocked with GP20, which is on"]
    clock.t += 6000
    relays.apply({20: 0})
    port.inputs[4].v = 0
    inputs.step(clock.t)
    assert port.levels[21] == 1
    port.inputs[4].v = 1  # within cooldown_s of its last change
    inputs.step(clock.t)
    assert port.levels[21] == 1 and out.lines[-1].startswith("Error: GP21")


def test_the_failsafe_acts_once_per_outage_and_says_so_when_back():
    cfg = config.validate(
        raw_config(
            inputs={}, failsafe={"16": {"after_s": 300}, "17": {"after_s": 60, "state": "on"}}
        )
    )
    port, out, clock = LocalPort(), Outbox(), Clock()
    relays = Relays(cfg, port, out, clock, RelayMemory(cfg, port))
    fs = Failsafe(cfg, relays, out, clock)
    fs.link(True)
    relays.apply({16: 1})
    fs.link(False)
    clock.t += 59000
    fs.step(clock.t)
    assert (port.levels[16], port.levels[17]) == (1, 0)
    clock.t += 1000
    fs.step(clock.t)
    assert port.levels[17] == 1
    relays.apply({17: 0})  # by hand, in the outage: the failsafe does not fight it
    clock.t += 240000
    fs.step(clock.t)
    fs.step(clock.t + 5000)
    assert (port.levels[16], port.levels[17]) == (0, 0)
    assert out.lines == []
    clock.t += 12000
    fs.link(True)
    assert out.lines == [
        "Info: broker unreachable for 312s: GP17 on after 60s, GP16 off after "
        "300s (local.failsafe)"
    ]
    fs.link(True)  # a second up: nothing more
    fs.link(False)  # the next outage: again
    relays.apply({17: 1})
    clock.t += 60000
    fs.step(clock.t)
    fs.link(True)
    assert out.lines[-1] == ("Info: broker unreachable for 60s: GP17 already on (local.failsafe)")
