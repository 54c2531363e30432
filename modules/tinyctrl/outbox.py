# SPDX-License-Identifier: MIT
# The outbox: everything the device publishes goes through it, on one topic, from one task.
#
# It holds what is pending, not a queue of messages: the full state, the pins whose state
# changed, NOTIFY values, replies, error lines, and posts to the device's other topics (Home
# Assistant's discovery and availability). When nothing is being sent a change goes out at
# once; what arrives while a publish is in flight or while the pacer holds messages back joins
# the next message. So a burst becomes few messages, and a flood in never becomes a flood out
# (guard.PublishGuard: publish_max per publish_window_s). Each kind takes its turn: one that
# keeps coming (a flood of stats requests) cannot hold back the others (a door's NOTIFY).
#
# An MQTT 5 request with a Response Topic gets copies of what it causes (its state, its Info:
# or Error: line) there, with its Correlation Data: answers, paced and bounded as the rest.
import asyncio

from . import log, mqtt5, protocol
from .guard import ErrorBudget, PublishGuard

MAX_REPLIES = 4
MAX_ERRORS = 4
MAX_POSTS = 4
MAX_ANSWERS = 4
_STATS = object()  # the stats reply, rendered when it is sent so that it is fresh
# Kinds of message, in the order they go when several are pending together.
POSTS, REPLIES, STATE, NOTIFY, ERRORS, ANSWERS = range(6)
# A pending kind passed over this often goes next (the longest passed over first).
PASSED_OVER = 2


class Post:
    """A message for another topic; `payload` may be a callable, rendered when it is sent."""

    def __init__(self, topic, payload, retain, qos=1, properties=None):
        self.topic = topic
        self.payload = payload
        self.retain = retain
        self.qos = qos
        self.properties = properties  # MQTT 5: an answer's Correlation Data


class Outbox:
    def __init__(self, cfg, client, pin_states, mono_ms, stats):
        g, m, gd = cfg["gpio"], cfg["mqtt"], cfg["guard"]
        self.client = client
        self.topic = m["topic"]
        self.device = cfg["name"]  # "FROM": the device name, never the client id
        self.prefix = g["prefix"]
        self.all_pins = g["relay"] + sorted(g["momentary"]) + g["contact"]
        self.notify_pins = set(g["notify"])
        self.pin_states = pin_states  # pins -> {pin: value}
        self.mono_ms = mono_ms  # -> monotonic milliseconds
        self.render_stats = stats  # -> the stats line
        self.pacer = PublishGuard(gd["publish_max"], gd["publish_window_s"])
        self.error_budget = ErrorBudget(max(1, gd["publish_max"] // 4), gd["publish_window_s"])
        self._full = False
        self._changed = set()  # pins whose state is to be published
        self._notify_pending = {}
        self._replies = []
        self._errors = []
        self._posts = []
        self._answers = []
        # (response topic, correlation data) of the request being handled, or None: what it
        # causes meanwhile is also answered there (Controller._answered).
        self.answer_to = None
        self.last_sent = b""  # the last message on the device's topic, as its echo comes back
        self._passed = [0] * 6  # per kind: sends since it became pending
        self._wake = asyncio.Event()

    @property
    def halted(self):
        return self.pacer.halted

    # ---- what to send

    def full(self):
        """Every pin's state (Actions F and J)."""
        self._full = True
        self._answer(self._state_of(self.all_pins))
        self._wake.set()

    def state(self, pins):
        """The state of `pins`, e.g. after a request, even if nothing moved."""
        self._changed.update(pins)
        self._answer(self._state_of(list(pins)))
        self._wake.set()

    def _state_of(self, pins):
        return lambda: protocol.state_json(self.prefix, self.pin_states(pins), self.device)

    def _answer(self, payload):
        """A copy for the request being handled, if it asked for answers (MQTT 5)."""
        to = self.answer_to
        if to and len(self._answers) < MAX_ANSWERS:
            # QoS 0: a broker's refusal in a PUBACK (a response topic outside the device's ACL)
            # would cost mqtt_as a reconnect; the device's topic has the state with QoS 1.
            props = {mqtt5.CORRELATION_DATA: to[1]} if to[1] else None
            self._answers.append(Post(to[0], payload, False, 0, props))

    def changed(self, pin, value):
        """`pin` now has `value`: its state, and a NOTIFY if the pin is in gpio.notify."""
        self._changed.add(pin)
        if pin in self.notify_pins:
            self._notify_pending[pin] = value
        self._wake.set()

    def reply(self, text):
        if len(self._replies) < MAX_REPLIES:
            self._replies.append(text)
            self._wake.set()
        self._answer(self.render_stats if text is _STATS else text)

    def stats(self):
        if _STATS not in self._replies:
            self.reply(_STATS)
        else:
            self._answer(self.render_stats)

    def post(self, topic, payload, retain=False):
        """Publish `payload` on another topic, paced with the rest."""
        if len(self._posts) < MAX_POSTS:
            self._posts.append(Post(topic, payload, retain))
            self._wake.set()

    def error(self, line, kind="request"):
        """Queue an error line. Kinds ("request", "auth") have a queue share and budget each,
        so garbage cannot crowd out the report of a failed authentication."""
        log(line)
        budget = self.error_budget
        queued = sum(1 for k, _ in self._errors if k == kind)
        if queued >= MAX_ERRORS:
            budget.drop(kind)
        elif budget.allow(self.mono_ms(), kind):
            n = budget.take_suppressed(kind)
            if n:
                line += " (%d more errors suppressed)" % n
            self._errors.append((kind, line))
            self._answer(line)
            self._wake.set()

    # ---- sending

    def _pending_kinds(self):
        return (
            self._posts,
            self._replies,
            self._full or self._changed,
            self._notify_pending,
            self._errors,
            self._answers,
        )

    def pending(self):
        return any(self._pending_kinds())

    def _next_kind(self):
        """The first pending kind in order, unless one was passed over PASSED_OVER times."""
        passed = self._passed
        pending = self._pending_kinds()
        pick = None
        for kind, waiting in enumerate(pending):
            if not waiting:
                passed[kind] = 0
            elif pick is None or passed[kind] > passed[pick] and passed[kind] >= PASSED_OVER:
                pick = kind
        if pick is not None:
            for kind, waiting in enumerate(pending):
                if waiting and kind != pick:
                    passed[kind] += 1
            passed[pick] = 0
        return pick

    def next_message(self):
        """The next message to publish, or None: a Post for another topic, else the payload
        for the device's topic."""
        kind = self._next_kind()
        if kind == POSTS:
            post = self._posts.pop(0)
            if callable(post.payload):
                post.payload = post.payload()
            return post
        if kind == REPLIES:
            r = self._replies.pop(0)
            return self.render_stats() if r is _STATS else r
        if kind == STATE:
            pins = self.all_pins if self._full else list(self._changed)
            self._full = False
            self._changed.clear()
            return protocol.state_json(self.prefix, self.pin_states(pins), self.device)
        if kind == NOTIFY:
            msg = protocol.notify_json(self.prefix, self._notify_pending, self.device)
            self._notify_pending = {}
            return msg
        if kind == ERRORS:
            return self._errors.pop(0)[1]
        if kind == ANSWERS:
            post = self._answers.pop(0)
            text = post.payload() if callable(post.payload) else post.payload
            post.payload = text.encode()
            return post
        return None

    async def run(self):
        """The publisher task. Returns only when the flood fuse has blown."""
        pacer = self.pacer
        while not pacer.halted:
            if not self.pending():
                self._wake.clear()
                await self._wake.wait()
                continue  # at once: no waiting for company
            wait = pacer.wait_ms(self.mono_ms())
            if wait:
                await asyncio.sleep_ms(wait)  # what comes meanwhile joins the next message
                continue
            msg = self.next_message()
            if not pacer.sent(self.mono_ms()):
                break
            # and what comes meanwhile joins the next message, too
            if isinstance(msg, Post):
                await self.client.publish(
                    msg.topic, msg.payload, msg.retain, msg.qos, msg.properties
                )
            else:
                self.last_sent = msg = msg.encode()
                await self.client.publish(self.topic, msg, qos=1)
            msg = None  # a discovery announcement is large: let it go before the next
