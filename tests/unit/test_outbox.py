# SPDX-License-Identifier: MIT
"""The outbox: what is pending, coalescing, the error budget, and the publisher task
answering at once unless a publish is in flight or the pacer holds messages back."""

import asyncio
import json

from check import ms, run_async
from tinyctrl import config, mqtt5
from tinyctrl.outbox import MAX_ANSWERS, MAX_ERRORS, MAX_REPLIES, Outbox, Post

PINS = {16: 0, 17: 0, 18: 0, 0: 0, 1: 0}


def make_cfg(publish_max=20, publish_window_s=10):
    return config.validate(
        {
            "name": "dev",
            "wifi": {"ssid": "home"},
            "mqtt": {"server": "broker", "topic": "home/pico", "client_id": "dev-client"},
            "gpio": {
                "relay": [16, 17],
                "momentary": {"18": 1},
                "contact": [0, 1],
                "notify": [0, 16],
            },
            "guard": {"publish_max": publish_max, "publish_window_s": publish_window_s},
        }
    )


class Broker:
    """A client whose publish records the message; with `hold`, each publish stays in flight
    until released, as one waiting for its PUBACK."""

    def __init__(self, hold=False):
        self.sent = []
        self.hold = hold
        self._release = asyncio.Event()

    async def publish(self, topic, msg, retain=False, qos=0, properties=None):
        if qos == 0:  # an answer (MQTT 5): QoS 0, never retained
            assert qos == 0 and not retain
            self.sent.append((topic, msg.decode(), properties))
            return
        assert topic == "home/pico" and qos == 1 and not retain
        self.sent.append(msg.decode())
        if self.hold:
            await self._release.wait()
            self._release.clear()

    def release(self):
        self._release.set()


def states(pins):
    return dict((p, PINS[p]) for p in pins)


def make(client=None, now=None, **guard):
    stats = lambda: "Uptime=x"  # noqa: E731
    return Outbox(make_cfg(**guard), client or Broker(), states, now or ms, stats=stats)


def body(msg):
    obj = json.loads(msg)
    assert obj.pop("FROM") == "dev"
    return obj


def test_nothing_pending_nothing_sent():
    box = make()
    assert not box.pending() and box.next_message() is None


def test_changes_coalesce_into_one_state_then_one_notify():
    box = make()
    box.changed(16, 1)
    box.changed(0, 1)
    box.changed(1, 0)  # not in gpio.notify: state only
    box.state({17: 0})  # requested, nothing moved: state only
    PINS.update({16: 1, 0: 1})
    try:
        assert body(box.next_message()) == {"GP16": 1, "GP0": 1, "GP1": 0, "GP17": 0}
        assert body(box.next_message()) == {"NOTIFY": {"GP16": 1, "GP0": 1}}
        assert box.next_message() is None and not box.pending()
    finally:
        PINS.update({16: 0, 0: 0})


def test_state_is_read_when_sent():
    box = make()
    box.changed(16, 1)
    PINS[16] = 0  # moved back before the message went out: the message says so
    assert body(box.next_message()) == {"GP16": 0}


def test_full_lists_every_pin():
    box = make()
    box.state([16])
    box.full()
    assert sorted(body(box.next_message())) == ["GP0", "GP1", "GP16", "GP17", "GP18"]
    assert box.next_message() is None  # the changed pin was in the full list


def test_replies_first_stats_once_and_rendered_when_sent():
    box = make()
    box.changed(17, 0)
    box.stats()
    box.stats()  # asked again before it went: one reply answers both
    box.reply("Info: MFA code accepted")
    assert box.next_message() == "Uptime=x"
    assert box.next_message() == "Info: MFA code accepted"
    assert body(box.next_message()) == {"GP17": 0}
    for i in range(MAX_REPLIES + 2):
        box.reply("r%d" % i)
    assert [box.next_message() for _ in range(MAX_REPLIES + 1)][-1] is None


def test_errors_within_the_budget_and_suppressed_ones_counted():
    t = [0]
    box = make(now=lambda: t[0], publish_max=8, publish_window_s=10)  # 2 error lines per 10 s
    for i in range(5):
        box.error("Error: %d" % i)
    assert box.next_message() == "Error: 0"
    assert box.next_message() == "Error: 1"
    assert box.next_message() is None
    t[0] = 10000  # the window has passed
    box.error("Error: later")
    assert box.next_message() == "Error: later (3 more errors suppressed)"


def test_error_lines_pending_are_capped():
    box = make(publish_max=400)
    for i in range(MAX_ERRORS + 3):
        box.error("Error: %d" % i)
    lines = []
    while box.pending():
        lines.append(box.next_message())
    assert lines == ["Error: %d" % i for i in range(MAX_ERRORS)]
    assert box.error_budget.suppressed == {"request": 3}


def test_a_failed_authentication_is_queued_behind_a_full_request_share():
    box = make(publish_max=400)
    for i in range(MAX_ERRORS + 3):
        box.error("Error: %d" % i)
    box.error("Error: MFA validation failed", "auth")
    lines = []
    while box.pending():
        lines.append(box.next_message())
    assert lines[-1] == "Error: MFA validation failed"
    assert len(lines) == MAX_ERRORS + 1


def test_publisher_sends_a_change_at_once():
    async def main():
        client = Broker()
        box = make(client)
        task = asyncio.create_task(box.run())
        await asyncio.sleep_ms(0)
        box.changed(17, 0)
        for _ in range(3):  # a few turns of the loop, far less than any coalescing pause
            await asyncio.sleep_ms(0)
        task.cancel()
        return client.sent

    sent = run_async(main)
    assert [body(m) for m in sent] == [{"GP17": 0}]


def test_changes_while_a_publish_is_in_flight_go_out_combined():
    # Action E: the second change comes while the first is being sent.
    async def main():
        client = Broker(hold=True)
        box = make(client)
        task = asyncio.create_task(box.run())
        box.changed(17, 0)
        await asyncio.sleep_ms(5)
        assert len(client.sent) == 1  # in flight
        box.changed(16, 0)
        box.changed(1, 0)
        await asyncio.sleep_ms(5)
        assert len(client.sent) == 1
        client.release()
        await asyncio.sleep_ms(5)
        client.release()
        await asyncio.sleep_ms(5)
        task.cancel()
        return client.sent

    sent = run_async(main)
    assert [body(m) for m in sent] == [{"GP17": 0}, {"GP16": 0, "GP1": 0}, {"NOTIFY": {"GP16": 0}}]


def test_a_flood_in_is_paced_and_coalesced_out():
    # publish_max 4 per 1 s: the pacer lets 2 go at once, then one per 500 ms.
    async def main():
        client = Broker()
        box = make(client, publish_max=4, publish_window_s=1)
        task = asyncio.create_task(box.run())
        for i in range(300):
            box.changed((16, 17, 1)[i % 3], 0)
            await asyncio.sleep_ms(1)
        sent = list(client.sent)
        await asyncio.sleep_ms(700)  # the pacer lets the held-back changes go, combined
        task.cancel()
        return sent, client.sent, box

    during, after, box = run_async(main)
    assert not box.halted
    assert 2 <= len(during) < 10, during  # 300 changes in over ~0.3 s or more
    later = [sorted(body(m)) for m in after[len(during) :]]
    assert ["GP1", "GP16", "GP17"] in later, after


def test_the_fuse_halts_publishing():
    box = make(publish_max=4, publish_window_s=10)
    now = 0
    for _ in range(5):
        box.pacer.sent(now)
    assert box.halted

    async def main():
        box.changed(16, 0)
        await box.run()  # returns at once: halted

    run_async(main)


def test_every_kind_takes_its_turn_under_a_flood_of_one():
    """A flood of stats and refresh requests holds back no NOTIFY, error or post for long:
    a kind passed over twice goes next."""
    box = make()
    sent = []
    for i in range(12):
        box.stats()
        box.full()
        if i == 1:
            box.changed(0, 1)
            box.error("Error: MFA validation failed, GPIO cannot be set", "auth")
            box.post("home/pico/status", b"online")
        msg = box.next_message()
        sent.append(
            "post"
            if hasattr(msg, "topic")
            else "notify"
            if "NOTIFY" in msg
            else msg.split("=")[0].split(":")[0][:6]
        )
    assert sent[0] == "Uptime"
    for kind in ("post", "notify", "Error"):  # queued for the second message, all within 5
        assert kind in sent[1:6], sent
    assert sent.count("Uptime") >= 4 and sent.count('{"GP0"') >= 3  # the rest, shared


def test_a_post_goes_to_its_topic_rendered_when_sent():
    calls = []

    def render():
        calls.append(1)
        return b"payload"

    box = make()
    box.post("homeassistant/device/x/config", render, True)
    assert calls == []
    post = box.next_message()
    assert (post.topic, post.payload, post.retain, calls) == (
        "homeassistant/device/x/config",
        b"payload",
        True,
        [1],
    )


def test_a_request_with_a_response_topic_gets_copies_there():
    box = make()
    box.answer_to = ("pc/a", b"id-1")
    box.state({16: 1})
    box.error("Error: GP16 refused")
    box.stats()
    box.answer_to = None
    box.reply("Info: not an answer")  # after the request: its topic only
    PINS[16] = 1
    try:
        sent = [box.next_message() for _ in range(7)]
    finally:
        PINS[16] = 0
    mine = [m for m in sent if not isinstance(m, Post)]
    # The device's topic as without the response topic.
    assert mine[0] == "Uptime=x" and mine[1] == "Info: not an answer"
    assert body(mine[2]) == {"GP16": 1} and mine[3] == "Error: GP16 refused"
    answers = [m for m in sent if isinstance(m, Post)]
    assert [a.topic for a in answers] == ["pc/a"] * 3
    assert all(a.properties == {mqtt5.CORRELATION_DATA: b"id-1"} for a in answers)
    assert body(answers[0].payload) == {"GP16": 1}  # in order: the state, then its line
    assert answers[1].payload == b"Error: GP16 refused" and answers[2].payload == b"Uptime=x"
    assert box.next_message() is None


def test_answers_are_bounded_and_wait_their_turn():
    box = make()
    box.answer_to = ("pc/a", b"")
    for _ in range(MAX_ANSWERS + 5):
        box.stats()
    box.answer_to = None
    box.changed(0, 1)  # a door's NOTIFY is not held back by a flood of answers
    kinds = []
    while box.pending():
        m = box.next_message()
        kinds.append("answer" if isinstance(m, Post) else m[:8])
    assert kinds.count("answer") == MAX_ANSWERS
    assert kinds.index('{"NOTIFY') < kinds.index("answer") + 3


def test_an_error_over_the_budget_is_not_answered_either():
    box = make(now=lambda: 0, publish_max=4, publish_window_s=10)  # 1 error line per 10 s
    box.answer_to = ("pc/a", b"")
    box.error("Error: 1")
    box.error("Error: 2")
    box.answer_to = None
    out = [box.next_message() for _ in range(3)]
    assert [m.payload for m in out if isinstance(m, Post)] == [b"Error: 1"]


def test_the_publisher_sends_answers_with_qos_0_and_their_correlation():
    async def main():
        broker = Broker()
        box = make(client=broker)
        task = asyncio.create_task(box.run())
        box.answer_to = ("pc/a", b"c")
        box.state({17: 0})
        box.answer_to = None
        for _ in range(20):
            await asyncio.sleep_ms(5)
        task.cancel()
        return broker.sent

    sent = run_async(main)
    assert body(sent[0]) == {"GP17": 0}
    topic, msg, props = sent[1]
    assert topic == "pc/a" and body(msg) == {"GP17": 0}
    assert props == {mqtt5.CORRELATION_DATA: b"c"}


def test_an_answer_without_correlation_data_has_no_properties():
    box = make()
    box.answer_to = ("pc/a", b"")
    box.reply("Info: x")
    box.answer_to = None
    box.next_message()
    answer = box.next_message()
    assert answer.topic == "pc/a" and answer.qos == 0 and answer.properties is None
