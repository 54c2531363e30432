# SPDX-License-Identifier: MIT
"""A client on an emulated board's topic, collecting what the device publishes with the
board's emulated time; the scenarios and the bench wait on it."""

import json
import threading


class TopicClient:
    """A client on the device's `topic` at the local broker. It does not receive its own
    publications (MQTT v5 no-local), so everything it collects came from the device."""

    def __init__(self, port, board, topic):
        import paho.mqtt.client as mqtt
        from paho.mqtt.subscribeoptions import SubscribeOptions

        self.board, self.topic = board, topic
        self.messages = []  # (emulated time, payload text)
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="emu-test", protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, options=SubscribeOptions(qos=1, noLocal=True))
        self.client.loop_start()

    def _on_message(self, _client, _userdata, msg):
        with self._lock:
            self.messages.append((self.board.emulated_s(), msg.payload.decode("utf-8", "replace")))

    def send(self, obj):
        self.send_text(json.dumps(obj))

    def send_text(self, text):
        self.client.publish(self.topic, text, qos=1).wait_for_publish(10)

    def mark(self):
        with self._lock:
            return len(self.messages)

    def wait(self, matches, timeout, since, what):
        """The first device message after `since` for which `matches(text, obj)` is true, where
        `obj` is the parsed JSON or None for plain text; as (emulated time, text)."""
        found = []

        def seen():
            with self._lock:
                for at, text in self.messages[since:]:
                    try:
                        obj = json.loads(text)
                    except ValueError:
                        obj = None
                    if matches(text, obj):
                        found.append((at, text))
                        return True
            return False

        try:
            self.board.wait_until(seen, timeout, what)
        except TimeoutError as e:
            with self._lock:
                got = [text for _, text in self.messages[since:]]
            raise TimeoutError("%s; device published %s" % (e, got)) from None
        return found[0]

    def said(self, text, timeout, since):
        """The first device message after `since` containing `text`, as (emulated time, text)."""
        return self.wait(lambda t, _o: text in t, timeout, since, repr(text))

    def heap_share(self, timeout):
        """Share of the heap in use after gc.collect(), in tenths of a percent (from stats)."""
        since = self.mark()
        self.send({"CMD": "stats"})
        _, text = self.wait(lambda t, _o: "Mem=" in t, timeout, since, "the stats reply")
        whole, _, tenth = text.split("Mem=", 1)[1].split("%", 1)[0].partition(".")
        return int(whole) * 10 + int(tenth or 0)

    def wait_pin(self, pin, value, timeout, since):
        key = "GP%d" % pin
        return self.wait(
            lambda _t, o: isinstance(o, dict) and o.get(key) == value,
            timeout,
            since,
            "a publish of %s=%d" % (key, value),
        )

    def wait_notify(self, pin, value, timeout, since):
        key = "GP%d" % pin
        return self.wait(
            lambda _t, o: (
                isinstance(o, dict)
                and isinstance(o.get("NOTIFY"), dict)
                and o["NOTIFY"].get(key) == value
            ),
            timeout,
            since,
            "NOTIFY %s=%d" % (key, value),
        )

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()
