# SPDX-License-Identifier: MIT
# What MQTT 5 adds, as pure logic: the broker's reason codes (what they mean, how long the
# device holds off before trying again) and the check of a request's Response Topic, which is
# only ever a destination for the answer (SECURITY.md).

# Property identifiers (MQTT 5.0, 2.2.2.2).
MESSAGE_EXPIRY = 0x02
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SESSION_EXPIRY = 0x11

MAX_RESPONSE_TOPIC = 128  # bytes; the device's own topic may be up to 200
MAX_CORRELATION = 64  # bytes
# Beneath the device's topic only <topic>/answers/... may be a response topic: the device reads
# nothing there, and a broker ACL that gives it <topic>/# covers it.
ANSWERS = "/answers/"

TAKEOVER = 0x8E
TAKEOVER_HOLD_S = 15  # doubled at each takeover in a row, up to TAKEOVER_HOLD_MAX_S
TAKEOVER_HOLD_MAX_S = 960

# code -> (meaning, seconds to hold off before the next CONNECT). MQTT 5.0 3.2.2.2 and
# 3.14.2.1; a 3.1.1 broker's CONNACK return codes 1-5 (3.1.1, 3.2.2.3) where they differ.
_REASONS = {
    0x01: ("protocol level refused (a 3.1.1 broker)", 0),
    0x03: ("server unavailable", 10),
    0x04: ("bad user name or password", 60),
    0x05: ("not authorised", 60),
    0x80: ("unspecified error", 10),
    0x81: ("malformed packet", 10),
    0x82: ("protocol error", 10),
    0x84: ("protocol version refused", 0),
    0x85: ("client id refused", 60),
    0x86: ("bad user name or password", 60),
    0x87: ("not authorised", 60),
    0x88: ("server unavailable", 10),
    0x89: ("server busy", 10),
    0x8A: ("banned", 600),
    0x8B: ("server shutting down", 10),
    0x8D: ("keep alive timeout", 0),
    TAKEOVER: ("session taken over by another client with this client id", TAKEOVER_HOLD_S),
    0x93: ("receive maximum exceeded", 10),
    0x95: ("packet too large", 10),
    0x97: ("quota exceeded", 30),
    0x98: ("administrative action", 10),
    0x9C: ("use another server", 60),
    0x9D: ("server moved", 60),
    0x9F: ("connection rate exceeded", 30),
}
V311_ONLY = (0x01, 0x84)  # refusals of the MQTT 5 protocol level itself


def reason(code, v5=True):
    """(meaning, hold-off seconds) of a CONNACK or DISCONNECT reason code; a 3.1.1 broker's
    codes 1-5 are its own (2 is a refused client id there)."""
    if not v5 and code == 0x02:
        return "client id refused", 60
    return _REASONS.get(code, ("reason code", 10 if code >= 0x80 else 0))


def takeover_hold_s(in_a_row):
    """Hold-off after the `in_a_row`-th takeover in a row: two clients with one id do not
    take the session from each other forever."""
    return min(TAKEOVER_HOLD_S << (in_a_row - 1), TAKEOVER_HOLD_MAX_S)


def response_topic_problem(topic, own, forbidden=()):
    """Why `topic` may not receive an answer, or None. It is a destination only: a topic name
    (no wildcards, no `$` system topic), bounded, and not the device's own topic tree (but
    for its ANSWERS branch) nor one of the `forbidden` prefixes (Home Assistant's discovery),
    where an answer would stand for the device or configure something."""
    if not isinstance(topic, str) or not topic:
        return "empty"
    if len(topic.encode()) > MAX_RESPONSE_TOPIC:
        return "longer than %d bytes" % MAX_RESPONSE_TOPIC
    if "+" in topic or "#" in topic:
        return "has a wildcard"
    if topic[0] == "$":
        return "is a $ topic"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in topic):
        return "has a control character"
    if topic.startswith(own + ANSWERS) and len(topic) > len(own + ANSWERS):
        own = None
    for tree in (own,) + tuple(forbidden):
        if tree is None:
            continue
        if topic == tree or topic.startswith(tree + "/"):
            return "is the device's own topic" if tree == own else "is under " + tree
    return None


def answer_to(properties, own, forbidden=()):
    """(response topic, correlation data) from a request's properties, None if it has no
    response topic, or ValueError (its text the one-line reason) if it may not have one."""
    if not properties:
        return None
    topic = properties.get(RESPONSE_TOPIC)
    if topic is None:
        return None
    why = response_topic_problem(topic, own, forbidden)
    corr = properties.get(CORRELATION_DATA, b"")
    if why is None and len(corr) > MAX_CORRELATION:
        why = "correlation data longer than %d bytes" % MAX_CORRELATION
    if why:
        raise ValueError("Error: response topic refused (%s); no answer sent there" % why)
    return topic, bytes(corr)
