# SPDX-License-Identifier: MIT
# The controller: wiring and life cycle. It builds the parts (relays, contacts, the outbox,
# NTP, commands), connects them to mqtt_as, and runs their tasks; each part's job is in its
# own module.
#
# Incoming messages are handled synchronously in the mqtt_as callback (pins move at once,
# nothing queues up); everything outbound goes through the outbox (outbox.py).
import asyncio
import time

import mqtt_as

from . import board_name, clock, homeassistant, log, mqtt5, net, ntp, protocol
from .auth import AuthError, AuthGate
from .commands import Commands
from .contacts import Contacts
from .download import Receiver as Download
from .failsafe import Failsafe
from .image_trial import ImageTrial
from .inputs import Inputs
from .memory import RelayMemory
from .mqtt import BACKLOG, TinyMQTTClient
from .outbox import Outbox
from .push import Receiver
from .relays import Relays
from .trial import folder_of

# Between failed first connects: each already waits out a join (back within 10 s of the
# network); max_retries and reset_delay_s bound how long before a reset.
FIRST_CONNECT_PAUSE_S = 1


class Controller:
    def __init__(self, cfg, hw, boot=None):
        self.cfg = cfg
        self.hw = hw  # the port: ports/*/port.py
        m = cfg["mqtt"]
        self.prefix = cfg["gpio"]["prefix"]
        self.topic = m["topic"]
        self.device = cfg["name"]  # published in "FROM"; never the client id
        self.mono_ms = clock.Monotonic()
        self.clock = clock.Clock()
        self.led = hw.StatusLed()
        self.boot = boot or {"cause": "power", "resets": 0, "outages": 0}
        self.started = self.mono_ms()
        self.watchdog = None
        self.client = TinyMQTTClient(self._mqtt_config(), hw, m["version"], m["servers"])
        self.outbox = Outbox(cfg, self.client, self.pin_states, self.mono_ms, self._stats_line)
        self.memory = RelayMemory(cfg, hw)
        self.relays = Relays(cfg, hw, self.outbox, self.mono_ms, self.memory)
        self.contacts = Contacts(cfg["gpio"]["contact"], hw, self.outbox)
        local = cfg["local"]
        self.inputs = local["inputs"] and Inputs(cfg, hw, self.relays, self.outbox, self.mono_ms)
        self.failsafe = local["failsafe"] and Failsafe(cfg, self.relays, self.outbox, self.mono_ms)
        self.push = Receiver(cfg, hw, self.outbox, self.mono_ms)  # config pushes, push.py
        self.image = ImageTrial(  # a new image's trial, or an update's switch
            hw, self.outbox, folder_of(hw.CONFIG_PATH), cfg["watchdog_s"], cfg["mqtt"]["topic"]
        )
        self.download = Download(cfg, hw, self.outbox, self.mono_ms, self.image)  # download.py
        self.auth = AuthGate(cfg, self.topic)
        self.ntp_sync = ntp.Sync(cfg, hw, self.clock, self.outbox, self.mono_ms)
        self.commands = Commands(
            cfg, hw, self.clock, self.outbox, self.ntp_sync, self.mono_ms, self.boot, self.client
        )
        self.announcer = cfg["homeassistant"] and homeassistant.Announcer(
            cfg, hw, self.outbox, board_name(hw.unique_id())
        )
        # Where the device says `online` for Home Assistant; watched for forgeries.
        self.status_topic = cfg["homeassistant"] and homeassistant.status_topic(self.topic)
        self._status = self.status_topic and self.status_topic.encode()
        # Where a request's Response Topic may not point (mqtt5.answer_to).
        self._not_answered = ((cfg["homeassistant"] or {"prefix": "homeassistant"})["prefix"],)

    def pin_states(self, pins):
        out = {}
        for p in pins:
            out[p] = self.relays.value(p) if p in self.relays.pins else self.contacts.value(p)
        return out

    def unix_s(self):
        return self.clock.now(time.time())

    def _stats_line(self):
        return self.commands.stats()

    # ---- MQTT wiring

    def _mqtt_config(self):
        m, w = self.cfg["mqtt"], self.cfg["wifi"]
        c = dict(mqtt_as.config)
        c.update(
            server=m["server"],
            port=m["port"],
            user=m["user"],
            password=m["password"],
            client_id=m["client_id"],
            keepalive=m["keepalive"],
            ssid=w["ssid"],
            wifi_pw=w["password"],
            clean=False,
            clean_init=True,
            queue_len=0,
            response_time=10,
            will=(self.topic, protocol.status_json("offline", self.device), False, 1),
            subs_cb=self._on_message,
            wifi_coro=self._on_link,
            connect_coro=self._on_connect,
            mqttv5=m["version"] != 3,  # mqtt.version
            mqttv5_con_props={mqtt5.SESSION_EXPIRY: m["session_expiry_s"]},
        )
        if m["ssl"]:
            c["ssl"] = True
            c["ssl_params"] = net.ssl_params(m)
        return c

    async def _on_link(self, up):
        if self.failsafe:
            self.failsafe.link(up)
        if up:
            self.led.show("operational" if not self.outbox.halted else "halted")
        else:
            self.boot["outages"] += 1
            self.hw.save_counters(self.boot["resets"], self.boot["outages"])
            self.led.show("connecting")
            log("connection lost, outage", self.boot["outages"])

    async def _on_connect(self, client):
        await client.subscribe(self.topic, 1)
        if self.announcer:
            await client.subscribe(self.status_topic, 1)
            await self.announcer.connected(client)
        self.outbox.full()  # full list on first connect and after every reconnect (Action F)
        log("subscribed to", self.topic)
        await self.push.subscribe(client)  # and confirm a pushed config on trial
        await self.download.subscribe(client)  # only with update.key
        self.image.connected()  # confirm a new image on trial, or report a rollback

    # ---- requests in

    def _on_message(self, topic, msg, retained, oversize, streak, properties):
        try:
            if streak >= BACKLOG:
                self._behind(streak)
            if topic == self.push.topic_b:
                return self.push.message(msg, oversize)
            if topic == self.download.topic_b:
                return self.download.message(msg, oversize)
            self.push.heard(topic, msg)  # a pushed config on trial is confirmed by its echo
            self.image.heard(topic, msg)  # and so is a new image
            if self.announcer and self.announcer.message(topic, msg, oversize):
                return
            if topic == self._status:
                return self._status_message(msg, retained)
            self._answered(msg, retained, oversize, properties)
        except Exception as e:  # a bug here must not kill the MQTT reader
            log("request failed:", repr(e))
            self.outbox.error("Error: internal error handling request")

    def _behind(self, streak):
        """Messages keep arriving back to back: the broker holds a backlog for the device and,
        once its queue is full, drops what the owner sends, unseen. A code or signed request
        in a dropped message must not work for whoever read it on the broker."""
        if self.clock.synced:
            self.auth.raise_floor(self.unix_s())
        if streak == BACKLOG:
            self.outbox.reply(
                "Info: requests are arriving faster than the device reads them; "
                "MFA codes and signed requests made before this ends are refused"
            )

    def _status_message(self, msg, retained):
        """<topic>/status is the device's own: a retained message there (which would stand
        for the device when it is gone) is cleared, anything but `online` is answered."""
        if retained and msg:
            self.outbox.post(self.status_topic, b"", True)
        if msg and (retained or msg != homeassistant.ONLINE):
            self.outbox.post(self.status_topic, homeassistant.ONLINE)

    def _check_claim(self, msg):
        """A message in the device's name that the device did not send last: a state it
        contradicts is answered with the truth, an `offline` with the device's state."""
        if msg == self.outbox.last_sent or protocol.MARK not in msg:
            return
        said = protocol.read_output(msg, self.prefix)
        if said is None or said[2] != self.device:
            return
        kind, value = said[0], said[1]
        if kind == "state" or kind == "notify":
            wrong = [
                p
                for p, v in value.items()
                if (p in self.relays.pins or p in self.contacts.pins)
                and self.pin_states((p,))[p] != v
            ]
            if wrong:
                self.outbox.state(wrong)
        elif kind == "status" and value != "online":
            self.outbox.full()
            if self.status_topic:
                self.outbox.post(self.status_topic, homeassistant.ONLINE)

    def _answered(self, msg, retained, oversize, properties):
        """A request with an MQTT 5 Response Topic: what it causes goes to the device's topic
        as ever and, copied, to that topic with its Correlation Data (Outbox.answer_to)."""
        try:
            to = mqtt5.answer_to(properties, self.topic, self._not_answered)
        except ValueError as e:
            to = None
            self.outbox.error(str(e))
        self.outbox.answer_to = to
        try:
            self._handle(msg, retained, oversize)
        finally:
            self.outbox.answer_to = None

    def _handle(self, msg, retained, oversize):
        error = self.outbox.error
        if retained and (msg or oversize):
            # Nothing is retained on the device's topic by right: clear it, or it comes back
            # at every connect (e.g. a request with Retain on, a forged state).
            self.outbox.post(self.topic, b"", True)
        if oversize:
            return error(
                "Error: request too large (%d bytes, max %d)" % (oversize, protocol.MAX_REQUEST)
            )
        try:
            req = protocol.parse(
                msg, self.prefix, self.cfg["mfa"]["keyname"], self.relays.pins, self.contacts.pins
            )
        except protocol.RequestError as e:
            return error(str(e))
        if req is None:  # device output (ours, or a forgery of it), or empty
            return self._check_claim(msg)
        if retained:
            return error("Error: retained requests are ignored; turn Retain off in the client")
        if req.cmd:
            return self.commands.run(req.cmd)
        unix_s, mono_ms = self.unix_s(), self.mono_ms()
        try:
            if not req.pins:
                self.auth.offer_code(req.code, unix_s, mono_ms, self.clock.first_sync)
                return self.outbox.reply("Info: MFA code accepted")
            self.auth.authorize(req, unix_s, mono_ms, self.clock.first_sync)
        except AuthError as e:
            self.outbox.state(req.pins)
            return error(str(e), "auth")
        self.relays.apply(req.pins)

    # ---- life cycle

    async def _feed_watchdog(self, wdt):
        while True:
            wdt.feed()
            await asyncio.sleep(1)

    async def _publish_periodically(self):
        every = self.cfg["publish_interval_s"]
        while every > 0:
            await asyncio.sleep(every)
            self.outbox.full()

    async def _first_connect(self):
        """Retry until the network and broker are there (a power cut restarts the router
        too). After max_retries failures and reset_delay_s, reset: mqtt_as gives up on a
        failed first connect by design."""
        w = self.cfg["wifi"]
        failures = 0
        verify = self.cfg["mqtt"]["ssl"] and self.cfg["mqtt"]["ca_file"]
        log(
            "joining Wi-Fi '%s', then the broker %s"
            % (w["ssid"], ", ".join("%s:%d" % node for node in self.cfg["mqtt"]["servers"]))
        )
        while True:
            try:
                if verify and not self.clock.synced:
                    # A board boots with its clock in 2021: every broker certificate would
                    # look not yet valid. Join Wi-Fi and set the clock before the handshake.
                    await self.client.wifi_connect()
                    try:
                        await self.ntp_sync.once()
                    except Exception as e:
                        log("ntp before TLS:", repr(e))
                await self.client.connect()
                return
            except OSError as e:
                failures += 1
                self.push.failure = "connect failed (%d): %r" % (failures, e)  # a trial's why
                self.image.failure = self.push.failure
                log(self.push.failure)
            if (
                failures >= w["max_retries"]
                and 0 <= w["reset_delay_s"] * 1000 <= self.mono_ms() - self.started
            ):
                log("no connection; resetting")
                self.image.giving_up(self.push.failure or "no connection to the broker")
                self.hw.reset()
            await asyncio.sleep(FIRST_CONNECT_PAUSE_S)

    async def run(self):
        self.led.show("connecting")
        self.relays.power_on(self.boot["cause"])  # gpio.power_on_state
        asyncio.create_task(self.memory.run(self.relays.states))
        wd = self.cfg["watchdog_s"]
        if wd > 0:
            self.watchdog = self.hw.Watchdog()
            self.watchdog.start(wd * 1000)
            asyncio.create_task(self._feed_watchdog(self.watchdog))
        asyncio.create_task(self.contacts.run())
        if self.inputs:  # local.inputs: relays move with or without the broker
            asyncio.create_task(self.inputs.run())
        if self.failsafe:
            asyncio.create_task(self.failsafe.run())
        asyncio.create_task(self.push.run())
        if self.download.enabled:
            asyncio.create_task(self.download.run())
        if self.image.can_switch:
            asyncio.create_task(self.image.run())
        publisher = asyncio.create_task(self.outbox.run())
        if self.announcer:
            asyncio.create_task(self.announcer.run())
        await self._first_connect()
        asyncio.create_task(self.ntp_sync.run())
        asyncio.create_task(self._publish_periodically())
        await publisher  # returns only if the flood fuse blows
        self.led.show("halted")
        log("publishing halted: the device flooded the broker; reset to resume")
        while True:  # keep serving the watchdog and pins, silently, until reset
            await asyncio.sleep(3600)
