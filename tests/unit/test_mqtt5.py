# SPDX-License-Identifier: MIT
"""MQTT 5's pure parts (tinyctrl/mqtt5.py): a request's response topic is a destination only,
reason codes read as one line with a sane hold-off, takeovers back off."""

from check import raises
from tinyctrl import mqtt5

OWN = "home/pico"
HA = ("homeassistant",)


def problem(topic):
    return mqtt5.response_topic_problem(topic, OWN, HA)


def test_an_ordinary_topic_may_receive_answers():
    assert problem("pc/answers/1") is None
    assert problem("home/other") is None  # another device's topic: it ignores device output
    assert problem(OWN + "/answers/tinyctrl-pc-1") is None  # the device's answers branch


def test_a_response_topic_is_only_a_destination():
    assert problem("") == "empty"
    assert problem(None) == "empty"
    assert problem(7) == "empty"
    assert problem("a/+/b") == "has a wildcard"
    assert problem("a/#") == "has a wildcard"
    assert problem("$SYS/broker") == "is a $ topic"
    assert problem("a\x00b") == "has a control character"
    assert problem("a\nb") == "has a control character"
    assert problem("x" * (mqtt5.MAX_RESPONSE_TOPIC + 1)).startswith("longer than")
    assert problem("é" * (mqtt5.MAX_RESPONSE_TOPIC // 2 + 1)).startswith("longer than")  # bytes
    assert problem("x" * mqtt5.MAX_RESPONSE_TOPIC) is None


def test_not_the_devices_own_topics_nor_home_assistants():
    for t in (OWN, OWN + "/status", OWN + "/config", OWN + "/answers/", OWN + "/x"):
        assert problem(t) == "is the device's own topic", t
    assert problem("homeassistant/device/x/config") == "is under homeassistant"
    assert problem("homeassistant") == "is under homeassistant"
    assert problem("homeassistantx/y") is None  # a prefix of the name is not the tree


def test_answer_to_reads_the_properties():
    assert mqtt5.answer_to(None, OWN) is None
    assert mqtt5.answer_to({}, OWN) is None
    assert mqtt5.answer_to({mqtt5.MESSAGE_EXPIRY: 5}, OWN) is None
    props = {mqtt5.RESPONSE_TOPIC: "pc/a", mqtt5.CORRELATION_DATA: b"id-1"}
    assert mqtt5.answer_to(props, OWN) == ("pc/a", b"id-1")
    assert mqtt5.answer_to({mqtt5.RESPONSE_TOPIC: "pc/a"}, OWN) == ("pc/a", b"")
    e = raises(ValueError, mqtt5.answer_to, {mqtt5.RESPONSE_TOPIC: OWN}, OWN)
    assert str(e) == (
        "Error: response topic refused (is the device's own topic); no answer sent there"
    )
    big = {mqtt5.RESPONSE_TOPIC: "pc/a", mqtt5.CORRELATION_DATA: b"x" * 65}
    assert "correlation data longer than 64 bytes" in str(
        raises(ValueError, mqtt5.answer_to, big, OWN)
    )


def test_reason_codes_have_a_meaning_and_a_hold_off():
    assert mqtt5.reason(0x86) == ("bad user name or password", 60)
    assert mqtt5.reason(0x87)[0] == "not authorised"
    assert mqtt5.reason(0x97) == ("quota exceeded", 30)
    assert mqtt5.reason(0x89) == ("server busy", 10)
    assert mqtt5.reason(mqtt5.TAKEOVER)[0].startswith("session taken over")
    assert mqtt5.reason(0x01)[1] == 0 and 0x01 in mqtt5.V311_ONLY  # fall back at once
    # 3.1.1's own codes
    assert mqtt5.reason(0x02, v5=False) == ("client id refused", 60)
    assert mqtt5.reason(0x04, v5=False)[0] == "bad user name or password"
    # unknown: a failure holds off, anything else does not
    assert mqtt5.reason(0xF0) == ("reason code", 10)
    assert mqtt5.reason(0x10)[1] == 0


def test_takeovers_back_off_doubling_to_a_bound():
    holds = [mqtt5.takeover_hold_s(n) for n in range(1, 9)]
    assert holds[0] == mqtt5.TAKEOVER_HOLD_S
    assert all(b == min(2 * a, mqtt5.TAKEOVER_HOLD_MAX_S) for a, b in zip(holds, holds[1:]))
    assert holds[-1] == mqtt5.TAKEOVER_HOLD_MAX_S
