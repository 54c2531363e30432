# The controller: relays, contacts and commands over one MQTT topic.
#
# One asyncio task per job. Incoming messages are handled synchronously in the
# mqtt_as callback (pins move at once, nothing queues up); everything outbound goes
# through one outbox that coalesces state, so floods in never become floods out.
import asyncio
import binascii
import gc
import sys
import time

import mqtt_as

from . import clock, net, protocol
from .auth import AuthError, AuthGate
from .guard import BurnoutGuard, ErrorBudget, PublishGuard, RateLimit
from .mqtt import TinyMQTTClient

COALESCE_MS = 50  # changes this close together go out as one message (Action E)
DEBOUNCE_MS = 30
CONTACT_POLL_S = 5  # safety net for an edge the IRQ missed
MAX_REPLIES = 4
MAX_ERRORS = 4
NTP_RETRY_S = 60
PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
PEM_END = b"-----END CERTIFICATE-----"


def log(*args):
    print("tinyctrl:", *args, file=sys.stderr)


def der_certificate(data):
    """The first certificate of a PEM file as DER; DER is returned as it is. MicroPython's
    mbedtls is built without PEM parsing, so PEM cadata would fail as "invalid cert"."""
    begin = data.find(PEM_BEGIN)
    if begin < 0:
        return data
    end = data.find(PEM_END, begin)
    if end < 0:
        raise OSError("mqtt.ca_file: PEM certificate has no END line")
    try:
        return binascii.a2b_base64(data[begin + len(PEM_BEGIN):end])
    except ValueError:
        raise OSError("mqtt.ca_file: the PEM certificate is not valid Base64")


class Monotonic:
    """Milliseconds since start from ticks_ms, unwrapped (ticks wrap after ~12 days); an
    integer, so a long uptime keeps millisecond steps (a Pico W float would not)."""

    def __init__(self):
        self._last = time.ticks_ms()
        self._ms = 0

    def __call__(self):
        t = time.ticks_ms()
        self._ms += time.ticks_diff(t, self._last)
        self._last = t
        return self._ms


class Controller:
    def __init__(self, cfg, port, boot=None):
        self.cfg = cfg
        self.port = port
        g, m = cfg["gpio"], cfg["mqtt"]
        self.prefix = g["prefix"]
        self.topic = m["topic"]
        self.device = cfg["name"]  # published in "FROM"; never the client id (issue 9, finding 2)
        self.mono = Monotonic()
        self.clock = clock.Clock()
        self.led = port.StatusLed()
        self.relays = {}
        for p in g["relay"] + sorted(g["momentary"]):
            self.relays[p] = port.RelayPin(p, g["active_low"])
        self.momentary = g["momentary"]
        self.contacts = {}
        self._contact_flag = port.EdgeFlag()
        for p in g["contact"]:
            self.contacts[p] = port.ContactPin(p, self._on_edge)
        self.notify = set(g["notify"])
        gd = cfg["guard"]
        self.burnout = BurnoutGuard(gd["cooldown_s"], gd["max_changes"], gd["window_s"], gd["max_violations"])
        self.pacer = PublishGuard(gd["publish_max"], gd["publish_window_s"])
        self.error_budget = ErrorBudget(max(1, gd["publish_max"] // 4), gd["publish_window_s"])
        self.auth = AuthGate(cfg, self.topic)
        boot = boot or {"cause": "power", "resets": 0, "outages": 0}
        self.boot_cause = boot["cause"]
        self.resets = boot["resets"]
        self.outages = boot["outages"]
        self.started = self.mono()
        self.connected = False
        self.watchdog = None
        # outbox
        self._dirty = set()
        self._full = False
        self._notify = {}
        self._replies = []
        self._errors = []
        self._wake = asyncio.Event()
        self._releases = {}  # momentary pin -> release task
        self._contact_state = dict((p, c.value()) for p, c in self.contacts.items())
        self._ntp_now = asyncio.Event()
        self._ntp_limit = RateLimit(cfg["ntp"]["force_wait_s"])
        self._getip_limit = RateLimit(cfg["getip_wait_s"])
        self._ip_task = None
        self.client = TinyMQTTClient(self._mqtt_config())

    # ---- MQTT wiring

    def _mqtt_config(self):
        m, w = self.cfg["mqtt"], self.cfg["wifi"]
        c = dict(mqtt_as.config)
        c.update(
            server=m["server"], port=m["port"], user=m["user"], password=m["password"],
            client_id=m["client_id"], keepalive=m["keepalive"], ssid=w["ssid"], wifi_pw=w["password"],
            clean=False, clean_init=True, queue_len=0, response_time=10,
            will=(self.topic, protocol.status_json("offline", self.device), False, 1),
            subs_cb=self._on_message, wifi_coro=self._on_link, connect_coro=self._on_connect,
        )
        if m["ssl"]:
            c["ssl"] = True
            c["ssl_params"] = self._ssl_params()
        return c

    def _ssl_params(self):
        import ssl

        m = self.cfg["mqtt"]
        params = {"server_hostname": m["server"]}  # SNI, and the name the certificate must carry
        if m["ca_file"]:
            try:
                with open(m["ca_file"], "rb") as f:
                    data = f.read()
            except OSError:
                raise OSError("mqtt.ca_file: cannot read %s; copy the CA certificate beside config.json" % m["ca_file"])
            params["cadata"] = der_certificate(data)
            params["cert_reqs"] = ssl.CERT_REQUIRED
        else:
            log("TLS without certificate verification (mqtt.tls_insecure): the broker is not authenticated")
        return params

    async def _on_link(self, up):
        self.connected = up
        if up:
            self.led.show("operational" if not self.pacer.halted else "halted")
        else:
            self.outages += 1
            self.port.save_counters(self.resets, self.outages)
            self.led.show("connecting")
            log("connection lost, outage", self.outages)

    async def _on_connect(self, client):
        await client.subscribe(self.topic, 1)
        self._full = True  # full list on first connect and after every reconnect (Action F)
        self._wake.set()
        log("subscribed to", self.topic)

    # ---- requests in

    def _on_message(self, topic, msg, retained):
        try:
            self._handle(msg, retained)
        except Exception as e:  # a bug here must not kill the MQTT reader
            log("request failed:", repr(e))
            self._error("Error: internal error handling request")

    def _handle(self, msg, retained):
        if self.client.oversize:
            n, self.client.oversize = self.client.oversize, 0
            return self._error("Error: request too large (%d bytes, max %d)" % (n, protocol.MAX_REQUEST))
        try:
            req = protocol.parse(msg, self.prefix, self.cfg["mfa"]["keyname"], self.relays, self.contacts)
        except protocol.RequestError as e:
            return self._error(str(e))
        if req is None:  # our own output, or a forgery of it
            return
        if retained:
            return self._error("Error: retained requests are ignored; turn Retain off in the client")
        if req.cmd:
            return self._command(req.cmd)
        now, ms = self.unix_time(), self.mono()
        try:
            if not req.pins:
                self.auth.offer_code(req.code, now, ms, self.clock.first_sync)
                return self._reply("Info: MFA code accepted")
            self.auth.authorize(req, now, ms, self.clock.first_sync)
        except AuthError as e:
            self._dirty.update(req.pins)
            return self._error(str(e), "auth")
        self._apply(req.pins)

    def _apply(self, wanted):
        """Decide every pin first, then move them together (Action N)."""
        now = self.mono()
        moves = []
        for pin, v in wanted.items():
            self._dirty.add(pin)
            relay = self.relays[pin]
            if relay.value() == v:
                continue
            if pin in self.momentary and v == 0:  # early release is always safe
                moves.append((pin, 0))
                continue
            reason = self.burnout.refuse(pin, now, self.name(pin), v)
            if reason:
                self._error(reason)
                continue
            self.burnout.record(pin, now)
            moves.append((pin, v))
        for pin, v in moves:
            self.relays[pin].value(v)
        for pin, v in moves:
            if pin in self.momentary:
                self._momentary(pin, v)
            if pin in self.notify:
                self._notify[pin] = v
        self._wake.set()

    def _momentary(self, pin, v):
        task = self._releases.pop(pin, None)
        if task:
            task.cancel()
        if v:
            self._releases[pin] = asyncio.create_task(self._release(pin, self.momentary[pin]))

    async def _release(self, pin, wait_s):
        await asyncio.sleep_ms(int(wait_s * 1000))
        self._releases.pop(pin, None)
        self.relays[pin].value(0)
        self._dirty.add(pin)
        if pin in self.notify:
            self._notify[pin] = 0
        self._wake.set()

    def _command(self, cmd):
        if cmd == "refresh":
            self._full = True
            self._wake.set()
        elif cmd == "stats":
            if "stats" not in self._replies:
                self._reply("stats")  # rendered when sent, so it is fresh
        elif cmd == "getip":
            if self._ip_task is None:
                refusal = self._getip_limit.refuse(self.mono(), "getip was asked")
                if refusal:
                    return self._error(refusal)
                self._ip_task = asyncio.create_task(self._lookup_ip())
        elif cmd == "ntp":
            refusal = self._ntp_limit.refuse(self.mono(), "NTP sync was forced")
            if refusal:
                return self._error(refusal)
            self._ntp_now.set()

    # ---- contacts

    def _on_edge(self, _pin):
        self._contact_flag.set()

    async def _watch_contacts(self):
        while True:
            try:
                await asyncio.wait_for_ms(self._contact_flag.wait(), CONTACT_POLL_S * 1000)
                await asyncio.sleep_ms(DEBOUNCE_MS)  # let the contact settle
            except asyncio.TimeoutError:
                pass
            changed = False
            for pin, c in self.contacts.items():
                v = c.value()
                if v != self._contact_state[pin]:
                    self._contact_state[pin] = v
                    self._dirty.add(pin)
                    if pin in self.notify:
                        self._notify[pin] = v
                    changed = True
            if changed:
                self._wake.set()

    # ---- messages out

    def _reply(self, text):
        if len(self._replies) < MAX_REPLIES:
            self._replies.append(text)
            self._wake.set()

    def _error(self, line, kind="request"):
        """Queue an error line. Kinds ("request", "auth") have a queue share and budget each,
        so garbage cannot crowd out the report of a failed authentication."""
        log(line)
        budget = self.error_budget
        queued = sum(1 for k, _ in self._errors if k == kind)
        if queued >= MAX_ERRORS:
            budget.drop(kind)
        elif budget.allow(self.mono(), kind):
            n = budget.take_suppressed(kind)
            if n:
                line += " (%d more errors suppressed)" % n
            self._errors.append((kind, line))
            self._wake.set()

    def states(self, pins):
        out = {}
        for p in pins:
            out[p] = self.relays[p].value() if p in self.relays else self.contacts[p].value()
        return out

    def _next_message(self):
        if self._replies:
            r = self._replies.pop(0)
            return self.stats() if r == "stats" else r
        if self._full or self._dirty:
            pins = list(self.relays) + list(self.contacts) if self._full else list(self._dirty)
            self._full = False
            self._dirty.clear()
            return protocol.state_json(self.prefix, self.states(pins), self.device)
        if self._notify:
            msg = protocol.notify_json(self.prefix, self._notify, self.device)
            self._notify = {}
            return msg
        if self._errors:
            return self._errors.pop(0)[1]
        return None

    def _pending(self):
        return self._replies or self._full or self._dirty or self._notify or self._errors

    async def _publisher(self):
        while not self.pacer.halted:
            if not self._pending():
                self._wake.clear()
                await self._wake.wait()
                await asyncio.sleep_ms(COALESCE_MS)
                continue
            wait = self.pacer.wait_ms(self.mono())
            if wait:
                await asyncio.sleep_ms(wait)
                continue
            msg = self._next_message()
            if msg is None:
                continue
            if not self.pacer.sent(self.mono()):
                break
            await self.client.publish(self.topic, msg, qos=1)
        self.led.show("halted")
        log("publishing halted: the device flooded the broker; reset to resume")

    async def _publish_periodically(self):
        every = self.cfg["publish_interval_s"]
        while every > 0:
            await asyncio.sleep(every)
            self._full = True
            self._wake.set()

    # ---- commands

    def unix_time(self):
        return self.clock.now(time.time())

    def stats(self):
        gc.collect()
        free, used = gc.mem_free(), gc.mem_alloc()
        parts = [
            "Uptime=" + clock.format_uptime((self.mono() - self.started) // 1000),
            "Outages=%d" % self.outages,
            "Mem=%.1f%%" % (100 * used / (used + free)),
        ]
        t = self.port.temperature_c()
        if t is not None:
            parts.append("Temp=%.1fC/%.1fF" % (t, t * 9 / 5 + 32))
        if self.clock.synced:
            parts.append("Rtc=" + clock.format_local(self.cfg["timezone"], self.unix_time()))
        else:
            parts.append("Rtc=not synced")
        rssi = self.port.wifi_rssi()
        if rssi is not None:
            parts.append("Rssi=%ddBm" % rssi)
        parts.append("Resets=%d (last: %s)" % (self.resets, self.boot_cause))
        return ", ".join(parts)

    async def _lookup_ip(self):
        try:
            url = self.cfg["ip_provider"]
            if not url:
                self._error("Error: getip is turned off (ip_provider is empty)")
            else:
                self._reply(protocol.ip_json(await net.public_ip(url), self.device))
        except Exception as e:
            log("getip:", repr(e))
            self._error("Error: public IP lookup failed")
        finally:
            self._ip_task = None

    async def _sync_once(self):
        """One NTP query; sets the board's clock too (TLS checks certificate dates against it)."""
        n = self.cfg["ntp"]
        t = await net.ntp_time(n["host"], n["port"])
        self.port.set_time(t)
        self.clock.sync(t, time.time())
        log("clock synced:", clock.format_local("UTC", t), "UTC")
        return t

    async def _sync_clock(self):
        n = self.cfg["ntp"]
        while True:
            forced = self._ntp_now.is_set()
            self._ntp_now.clear()
            try:
                t = await self._sync_once()
                if forced:
                    self._reply("Info: clock synced, Rtc=" + clock.format_local(self.cfg["timezone"], t))
                wait = n["interval_s"]
            except Exception as e:
                log("ntp:", repr(e))
                if forced:
                    self._error("Error: NTP sync failed")
                wait = NTP_RETRY_S
            if wait < 0:  # periodic sync off: wait for a forced one
                await self._ntp_now.wait()
                continue
            try:
                await asyncio.wait_for(self._ntp_now.wait(), wait)
            except asyncio.TimeoutError:
                pass

    # ---- life cycle

    async def _feed_watchdog(self, wdt):
        while True:
            wdt.feed()
            await asyncio.sleep(1)

    async def _first_connect(self):
        """Retry until the network and broker are there (a power cut restarts the router
        too). After max_retries failures and reset_delay_s, reset: mqtt_as gives up on a
        failed first connect by design."""
        w = self.cfg["wifi"]
        failures = 0
        verify = self.cfg["mqtt"]["ssl"] and self.cfg["mqtt"]["ca_file"]
        while True:
            try:
                if verify and not self.clock.synced:
                    # A board boots with its clock in 2021: every broker certificate would
                    # look not yet valid. Join Wi-Fi and set the clock before the handshake.
                    await self.client.wifi_connect()
                    try:
                        await self._sync_once()
                    except Exception as e:
                        log("ntp before TLS:", repr(e))
                await self.client.connect()
                return
            except OSError as e:
                failures += 1
                log("connect failed (%d): %r" % (failures, e))
            if failures >= w["max_retries"] and 0 <= w["reset_delay_s"] * 1000 <= self.mono() - self.started:
                log("no connection; resetting")
                self.port.reset()
            await asyncio.sleep(min(30, 1 << min(failures, 5)))

    async def run(self):
        self.led.show("connecting")
        wd = self.cfg["watchdog_s"]
        if wd > 0:
            self.watchdog = self.port.Watchdog()
            self.watchdog.start(wd * 1000)
            asyncio.create_task(self._feed_watchdog(self.watchdog))
        asyncio.create_task(self._watch_contacts())
        publisher = asyncio.create_task(self._publisher())
        await self._first_connect()
        asyncio.create_task(self._sync_clock())
        asyncio.create_task(self._publish_periodically())
        await publisher  # returns only if the flood fuse blows
        while True:  # keep serving the watchdog and pins, silently, until reset
            await asyncio.sleep(3600)

    def name(self, pin):
        return "%s%d" % (self.prefix, pin)
