# SPDX-License-Identifier: MIT
# The {"CMD": ...} requests: refresh, stats (the stats line), getip (public-IP lookup) and ntp.
import asyncio
import gc
import time

from . import __version__, clock, image_trial, log, net, protocol
from .trial import folder_of
from .guard import RateLimit


class Commands:
    def __init__(self, cfg, hw, clock, outbox, ntp_sync, mono_ms, boot, link=None):
        self.cfg = cfg
        self.hw = hw
        self.clock = clock  # clock.Clock: the wall clock
        self.outbox = outbox
        self.ntp_sync = ntp_sync
        self.mono_ms = mono_ms  # -> monotonic milliseconds since start (clock.Monotonic)
        self.boot = boot  # {"cause", "resets", "outages"}, kept up to date by the controller
        self.link = link  # the MQTT client: its protocol and the broker's last refusal
        self._ip_task = None
        self._getip_limit = RateLimit(cfg["getip_wait_s"])

    def run(self, cmd):
        if cmd == "refresh":
            self.outbox.full()
        elif cmd == "stats":
            self.outbox.stats()  # rendered when sent, so it is fresh
        elif cmd == "getip":
            if self._ip_task is None:
                # Each lookup is a DNS query and a TLS handshake on a Pico W.
                refusal = self._getip_limit.refuse(self.mono_ms(), "getip was asked")
                if refusal:
                    return self.outbox.error(refusal)
                self._ip_task = asyncio.create_task(self._lookup_ip())
        elif cmd == "ntp":
            self.ntp_sync.force()

    def stats(self):
        gc.collect()
        free, used = gc.mem_free(), gc.mem_alloc()
        parts = [
            "Uptime=" + clock.format_uptime(self.mono_ms() // 1000),
            "Outages=%d" % self.boot["outages"],
            "Mem=%.1f%%" % (100 * used / (used + free)),
        ]
        t = self.hw.temperature_c()
        if t is not None:
            parts.append("Temp=%.1fC/%.1fF" % (t, t * 9 / 5 + 32))
        if self.clock.synced:
            unix_s = self.clock.now(time.time())
            parts.append("Rtc=" + clock.format_local(self.cfg["timezone"], unix_s))
        else:
            parts.append("Rtc=not synced")
        rssi = self.hw.wifi_rssi()
        if rssi is not None:
            parts.append("Rssi=%ddBm" % rssi)
        parts.append("Resets=%d (last: %s)" % (self.boot["resets"], self.boot["cause"]))
        if self.link:
            parts.append(self.link.status())
        parts.append("Version=" + __version__)
        rollback = image_trial.last_rollback(folder_of(self.hw.CONFIG_PATH))
        if rollback:
            parts.append("RolledBack=%s (%s)" % rollback)
        return ", ".join(parts)

    async def _lookup_ip(self):
        try:
            url = self.cfg["ip_provider"]
            if not url:
                self.outbox.error("Error: getip is turned off (ip_provider is empty)")
            else:
                self.outbox.reply(protocol.ip_json(await net.public_ip(url), self.cfg["name"]))
        except Exception as e:
            log("getip:", repr(e))
            self.outbox.error("Error: public IP lookup failed")
        finally:
            self._ip_task = None
