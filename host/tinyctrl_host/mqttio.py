# SPDX-License-Identifier: MIT
"""The PC on the device's topic (paho-mqtt): send a request and wait for the device's answer,
or follow the topic in readable form. Requests for protected pins carry a TOTP code or a
signature made with the device's own code (tinyctrl.totp, tinyctrl.protocol.canonical).

With MQTT 5 (mqtt.version 5, or "auto" where the broker has it) a request can carry a Message
Expiry Interval and this PC's own response topic and correlation data: its answer, not the
next line on the topic."""

import json
import queue
import secrets
import threading
import time
import unicodedata

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tinyctrl import mqtt5, protocol, totp

from . import NO_BROKER, Failure, configfile, keys


class Event(str):
    """What happened to this PC's own connection, queued among the messages (Topic.next)."""


class Topic:
    """One connection to the broker in a config, subscribed to its topic; messages queue up.
    paho reconnects by itself; the drop and the return are queued as Events. With `answers`
    and MQTT 5 it also subscribes to its own response topic (`answers_next`)."""

    def __init__(self, cfg, config_dir, timeout=10, answers=False, topics=None, into=None):
        version = cfg["mqtt"].get("version", "auto")
        # `topics`: several devices' topics on this broker (tinyctrl status); messages then
        # queue as (this Topic, topic, payload), into a queue several share if given
        self.topics = topics
        self.messages = into or queue.Queue()
        try:
            self._open(cfg, config_dir, timeout, answers, version != 3)
        except Failure:
            if not (version == "auto" and self._refused_v5):
                raise
            self._open(cfg, config_dir, timeout, answers, False)  # a 3.1.1 broker

    def _open(self, cfg, config_dir, timeout, answers, v5):
        m = cfg["mqtt"]
        self.v5 = v5
        self.topic = m["topic"]
        self.where = "%s:%d" % (m["server"], m["port"])
        self.answers = queue.Queue()
        self._closing = False
        self._refused_v5 = False
        client_id = "tinyctrl-pc-" + secrets.token_hex(4)
        # Where the device answers this PC: under its topic's answers/ tree (mqtt5.ANSWERS),
        # which the device allows and reads nothing from.
        self.answer_topic = answers and v5 and self.topic + mqtt5.ANSWERS + client_id
        if self.answer_topic and len(self.answer_topic.encode()) > mqtt5.MAX_RESPONSE_TOPIC:
            self.answer_topic = None  # the device would refuse it: the topic's next line
        self.correlation = None  # of the last request sent with answer=True
        if v5:
            self.client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
            )
        else:
            self.client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, clean_session=True, client_id=client_id
            )
        if m["user"]:
            self.client.username_pw_set(m["user"], m["password"])
        if m["ssl"]:
            ca = configfile.ca_path(m, config_dir)
            problem = ca and configfile.ca_problem(ca)
            if problem:
                raise Failure(problem)
            try:
                self.client.tls_set(ca_certs=ca)
            except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
                raise Failure("broker %s: cannot set up TLS (%s)" % (self.where, e))
            self.client.tls_insecure_set(bool(m.get("tls_insecure")))
        self._ready = threading.Event()
        self._refused = None
        self.client.reconnect_delay_set(1, 10)
        self.client.connect_timeout = timeout  # the TCP and TLS connect, within the wait
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        # mqtt.servers: the nodes of one cluster, each tried in turn until one answers
        for i, (host, port) in enumerate(m["servers"]):
            self.where = "%s:%d" % (host, port)
            try:
                self.client.connect(host, port, keepalive=30)
                break
            except OSError as e:
                if i == len(m["servers"]) - 1:
                    raise Failure(
                        "broker %s: cannot connect (%s)" % (self.where, e.strerror or e),
                        NO_BROKER,
                    )
        self.client.loop_start()
        if not self._ready.wait(timeout) or self._refused:
            self.close()
            raise Failure(
                "broker %s: %s" % (self.where, self._refused or "no answer within %d s" % timeout),
                NO_BROKER,
            )

    def _on_message(self, client, userdata, msg):
        if msg.topic != self.answer_topic:
            item = msg.payload if self.topics is None else (self, msg.topic, msg.payload)
            return self.messages.put(item)
        corr = getattr(msg.properties, "CorrelationData", None)
        if corr is not None and corr == self.correlation:
            self.answers.put(msg.payload)

    def _on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            # A 3.1.1 broker answers an MQTT 5 CONNECT with return code 1, which paho reports
            # as 0x84 (MQTT 3.1.1, 3.2.2.3; paho's CONNACK handling).
            self._refused_v5 = self.v5 and reason.value in mqtt5.V311_ONLY
            self._refused = "refused the connection (%s)" % reason
            self._ready.set()
            client.disconnect()
        else:
            if self._ready.is_set():
                self.messages.put(
                    Event(
                        "connected again to the broker; what was published meanwhile is not shown"
                    )
                )
            if self.topics is None:
                client.subscribe(self.topic, qos=1)
            else:
                client.subscribe([(t, 1) for t in self.topics])
            if self.answer_topic:
                client.subscribe(self.answer_topic, qos=1)

    def _on_disconnect(self, client, userdata, flags, reason, properties):
        if self._ready.is_set() and not self._closing:
            self.messages.put(
                Event("lost the connection to the broker (%s); reconnecting" % reason)
            )

    def publish(self, payload, expire_s=None, answer=False, topic=None):
        """Publish a request (on `topic`, else the config's); with MQTT 5, `expire_s` is its
        Message Expiry Interval (the broker drops it unread after that) and `answer` asks for
        the answer on this PC's response topic with fresh correlation data."""
        props = None
        if self.v5 and (expire_s or (answer and self.answer_topic)):
            props = Properties(PacketTypes.PUBLISH)
            if expire_s:
                props.MessageExpiryInterval = expire_s
            if answer and self.answer_topic:
                self.correlation = secrets.token_bytes(8)
                props.ResponseTopic = self.answer_topic
                props.CorrelationData = self.correlation
        info = self.client.publish(topic or self.topic, payload, qos=1, properties=props)
        info.wait_for_publish(10)
        if not info.is_published():
            raise Failure("broker %s: the request was not accepted" % self.where, NO_BROKER)

    def next(self, deadline, events=False):
        """The next payload (or, with `events`, Event) before `deadline` (time.monotonic()),
        else None."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                item = self.messages.get(timeout=left)
            except queue.Empty:
                return None
            if events or not isinstance(item, Event):
                return item

    def answers_next(self, deadline):
        """The next answer to the last request sent with answer=True, before `deadline`."""
        left = deadline - time.monotonic()
        try:
            return self.answers.get(timeout=left) if left > 0 else None
        except queue.Empty:
            return None

    def close(self):
        self._closing = True
        self.client.loop_stop()
        self.client.disconnect()


def parse_request(cfg, text):
    """The request JSON, checked by the device's own parser so a refusal shows here first."""
    g = cfg["gpio"]
    outputs = set(g["relay"]) | set(g["momentary"])
    try:
        req = protocol.parse(
            text.encode(), g["prefix"], cfg["mfa"]["keyname"], outputs, set(g["contact"])
        )
    except protocol.RequestError as e:
        raise Failure(str(e)[len("Error: ") :])
    if req is None:
        raise Failure("that is a device response, not a request")
    return req, json.loads(text)


def authorise(cfg, req, obj, topic, code=None, key_file=None, now=None, wait=None):
    """Add what the device needs for the protected pins in `req` to `obj`: the given `code`, a
    signature when the pins are signed ones and a signing key is at hand (a key file, else
    sign.keys), or else the current TOTP code from the key mfa.pins gives them. If this PC has
    sent that key's current code already, `wait(seconds)` is called first, for the next one."""
    now = int(time.time() if now is None else now)
    sign, mfa = cfg["sign"], cfg["mfa"]
    need = [p for p in req.pins if p in mfa["pins"] or p in sign["pins"]]
    if code is not None:
        obj[mfa["keyname"]] = code
    if not need or code is not None or req.code is not None or req.ts is not None:
        return obj  # open pins, or the caller brought the code or signature
    signer = _signer(sign, need, key_file)
    if signer and (key_file or not all(p in mfa["pins"] for p in need)):
        msg = protocol.canonical(topic, now, req.pins, cfg["gpio"]["prefix"]).encode()
        obj.update(TS=now, SIG=totp.hmac_sha256(signer.encode(), msg).hex())
        return obj
    shared = [
        k for k in mfa["pins"].get(need[0], ()) if all(k in mfa["pins"].get(p, ()) for p in need)
    ]
    if not shared:
        raise Failure(
            "no one key unlocks %s: send them one at a time"
            % ", ".join("%s%d" % (cfg["gpio"]["prefix"], p) for p in need)
        )
    key = shared[0]
    step = totp.counter_at(now)
    sent = keys.last_sent_step(key)
    if sent is not None and step <= sent <= step + 1:
        left = (sent + 1) * totp.STEP_S - now
        (wait or time.sleep)(left)
        step = sent + 1
    obj[mfa["keyname"]] = totp.hotp(key, step)
    keys.remember_sent_step(key, step, configfile.write_private)
    return obj


def _signer(sign, need, key_file):
    if key_file:
        try:
            with open(key_file) as f:
                return f.read().strip()
        except OSError as e:
            raise Failure("%s: cannot read the key file (%s)" % (key_file, e.strerror or e))
    names = [
        n for n in sign["pins"].get(need[0], ()) if all(n in sign["pins"].get(p, ()) for p in need)
    ]
    return sign["keys"][names[0]] if names else None


def answer(payload, req, device, prefix):
    """(done, refused) for one message after our request: does it answer it, and how?"""
    said = protocol.read_output(payload, prefix)
    if said is None:
        return False, False  # a request, ours or another client's
    kind, value, sender = said
    if kind == "text":
        if value.startswith("Error:"):
            return True, True
        if req.cmd == "stats":
            return value.startswith("Uptime="), False
        if req.cmd == "ntp" or (req.code is not None and not req.pins):
            return value.startswith("Info:"), False
        return False, False
    if device and sender != device:
        return False, False  # another device on the same topic
    if req.cmd == "getip":
        return kind == "ip", False
    if kind != "state":
        return False, False
    if req.cmd == "refresh" or not req.pins:
        return True, False
    if all(p in value for p in req.pins):
        return True, any(value[p] != v for p, v in req.pins.items())
    return False, False


def safe(text):
    """`text` with what a terminal would act on written out (\\x1b, \\u202e): escape sequences,
    control characters, direction overrides and line separators, which another client on a
    shared broker could send to clear, recolour or fake the user's screen."""
    out = []
    for c in text:
        if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            out.append("\\x%02x" % ord(c) if ord(c) < 0x100 else "\\u%04x" % ord(c))
        else:
            out.append(c)
    return "".join(out)


def sender(payload):
    """The FROM of the device's own JSON output, or None."""
    said = protocol.read_output(payload, "GP")
    return said[2] if said else None


def describe(payload, prefix="GP", device=None):
    """One safe, readable line for a message on the topic; with `device` (the config's name),
    a message from another sender says so."""
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return "(%d bytes, not text)" % len(payload)
    return safe(_describe(text, payload, prefix, device))


def _describe(text, payload, prefix, device):
    said = protocol.read_output(payload, prefix)
    if said is None:
        return ("device: " if protocol.is_device_output(payload) else "request        ") + text
    kind, value, sender = said
    if kind == "text":
        for mark, label in (("Error:", "ERROR "), ("Info:", "info  ")):
            if text.startswith(mark):
                return label + text[len(mark) :].strip()
        return "stats " + text
    mark = "  [not %s]" % device if device and sender != device else ""
    if kind == "status":
        return "%-14s is %s%s" % (sender, value.upper(), mark)
    if kind == "ip":
        return "%-14s public IP %s%s" % (sender, value, mark)
    shown = "  ".join("%s%d=%s" % (prefix, pin, value[pin]) for pin in sorted(value))
    return "%-14s %s%s%s" % (sender, "NOTIFY " if kind == "notify" else "", shown, mark)
