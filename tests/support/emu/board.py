# SPDX-License-Identifier: MIT
"""One emulated Pico W: the UF2 and its filesystem booted in rp2040py, its USB console, its
pins, the network faults its Wi-Fi chip can meet, and the log of a watchdog reset."""

import bisect
import collections
import os
import pathlib
import pty
import select
import threading
import time
import tty

from emu import log
from emu.cyw43 import IsolatedCyw43439
from emu.image import (
    FS_BLOCK_SIZE,
    filesystem_region,
    guest_symbols,
    littlefs_files,
    littlefs_image,
    uf2_flash,
)
from rp2040py.boards import BoardSpec, FlashLayout
from rp2040py.device import MicroPythonDevice
from rp2040py.device.base_device import ResetCause
from rp2040py.external.bootsel_button import BootselButton
from rp2040py.gpio_pin import GPIOPinState

# RP2040 registers a watchdog reset's log reads (datasheet 4.6.5, 4.7.6): the 64-bit microsecond
# count and why the watchdog fired (bit 0 its timer ran out, bit 1 a forced reset).
TIMER_TIMERAWH, TIMER_TIMERAWL = 0x40054024, 0x40054028
WATCHDOG_REASON = 0x40058008
# Wall seconds allowed per emulated second before a wait gives up even if emulated time is
# still short (measured here: about 30 with Wi-Fi active).
WALL_PER_EMULATED_S = 120
# How often pace_idle() looks at the two clocks, in emulated ns: often enough that rp2040py's
# batch, which looks at the wall clock every 256 steps, ends every few emulated ms when idle.
PACE_NS = 20_000


class PicoW:
    """One emulated Pico W running `uf2` with a littlefs holding `files` ({name: bytes}), near
    an access point that asks for `ap_passphrase` (None: it takes any, as an open one would)."""

    def __init__(self, uf2, files, router, workdir, on_udp_reply=None, ap_passphrase=None):
        flash = uf2_flash(uf2)
        fs_start, fs_size = filesystem_region(flash)
        self.layout = FlashLayout(
            fs_start=fs_start, fs_blockcount=fs_size // FS_BLOCK_SIZE, fs_blocksize=FS_BLOCK_SIZE
        )
        fs_path = pathlib.Path(workdir, "littlefs.img")
        littlefs_image(fs_path, files, self.layout.fs_blockcount)
        self.chip = None

        def wifi_chip():
            self.chip = IsolatedCyw43439(router, on_udp_reply)
            self.chip.bus.passphrase = ap_passphrase
            return self.chip

        spec = BoardSpec(
            extras=(BootselButton, wifi_chip),
            layout=self.layout,
            image=str(uf2),
        )
        self.device = MicroPythonDevice(board=spec, filesystem=fs_path)
        self.mcu = self.device.mcu
        self.sim = self.device.simulator
        self._output = bytearray()
        self._output_cv = threading.Condition()
        self._input = collections.deque()
        self._input_lock = threading.Lock()
        self.device.cdc.on_serial_data = self._on_output
        self._feeder = self.sim.clock.create_alarm(self._feed_input)
        self._held_read = None  # the size of the CDC OUT read held until there is input
        self._hold_empty_reads()
        self.resets = 0
        self.reset_times = []  # emulated s of each watchdog reset
        self._printed_at = []  # (console position, emulated s) of each piece of output
        self.enumerations = 0
        self.mcu.watchdog.on_watchdog_trigger = self._on_watchdog
        # _tinyctrl's last kick from Python (ports/rp2/cmodule/watchdog.c), for the reset's log
        self._kick_ms_addr = guest_symbols(uf2, ("wdt_kick_ms",)).get("wdt_kick_ms")
        self._pty = None  # master fd while the console is also served on a pty
        self.trace = []  # (emulated s, gpio, GPIOPinState) for the pins given to trace_pins()
        self._traced = ()

    def trace_pins(self, pins):
        """Record every change of each pin's state (driven LOW/HIGH, or an input and its pull)
        from the first instruction on: call before start(). A watchdog reset puts the pads back
        to their reset state without an edge, so the states after one are recorded too."""
        self._traced = tuple(pins)
        for gpio in self._traced:
            pin = self.mcu.gpio[gpio]
            self.trace.append((self.emulated_s(), gpio, pin.value))
            pin.add_listener(
                lambda value, _last, gpio=gpio: self.trace.append((self.emulated_s(), gpio, value))
            )

    # -- life cycle

    def start(self, timeout=120):
        """Boot; returns once the USB console has enumerated."""
        self.device.start_async(timeout).result(timeout + 5)
        self.enumerations = 1
        self.device.cdc.on_device_connected = self._on_enumerated
        self.sim.call(self._arm_feeder())

    def _on_enumerated(self):
        self.enumerations += 1

    def wait_reboot(self, timeout):
        """After a reset: wait (emulated `timeout`) until the console is back on USB."""
        expected = self.resets + 1
        self.wait_until(
            lambda: self.enumerations >= expected, timeout, "USB console back after the reset"
        )

    async def _arm_feeder(self):
        self._feeder.schedule(1_000_000)

    def stop(self):
        self.device.stop()

    def files(self, power_cut=False):
        """{name: bytes} of the files on the board's flash now, as littlefs reads them after a
        power cut (a file open for writing shows as it was last closed or synced). With
        `power_cut`, the power goes in the same emulated instant and comes back at once: RAM,
        pads and the watchdog's scratch registers go, flash stays (a power-on reset)."""
        start = self.layout.fs_start
        size = self.layout.fs_blockcount * FS_BLOCK_SIZE
        flash = []

        async def read():
            flash.append(bytes(self.mcu.flash[start : start + size]))
            if power_cut:
                self.device.hard_reset(cause=ResetCause.POWER_ON)

        self.sim.call(read())
        if power_cut:
            log("power cut at %.2f s emulated" % self.emulated_s())
        return littlefs_files(flash[0], self.layout.fs_blockcount)

    def power_cut(self):
        """Cut the power and give it back; the files as the cut left them (`files()`)."""
        return self.files(power_cut=True)

    def cut_power_at_flash_write(self, when):
        """Cut the power at the instant a flash write makes `when(kind, offset)` true (kind
        "erase" or "program", offset from the start of flash), just after that write: no
        later write reaches the flash, and the board starts again from power-on as soon as
        the emulator gets to it. Returns an Event set once the cut has happened; one cut per
        call."""
        ssi, cut = self.mcu.ssi, threading.Event()
        original = ssi._apply_command

        def apply():
            buf = ssi._tx_buffer
            if cut.is_set() or not buf:  # the power is off: nothing more is written
                ssi._tx_buffer = bytearray()
                return
            opcode, enabled = buf[0], ssi._write_enabled
            offset = (buf[1] << 16 | buf[2] << 8 | buf[3]) if len(buf) >= 4 else None
            original()
            kind = {0x20: "erase", 0xD8: "erase", 0x02: "program"}.get(opcode)
            if kind and enabled and offset is not None and when(kind, offset):
                cut.set()
                self.sim.schedule_threadsafe(restore())

        async def restore():
            log("power cut at %.3f s emulated, at a flash write" % self.emulated_s())
            ssi._apply_command = original
            self.device.hard_reset(cause=ResetCause.POWER_ON)

        ssi._apply_command = apply
        return cut

    def _on_watchdog(self):
        self.resets += 1
        self.reset_times.append(self.emulated_s())
        log(
            "watchdog reset #%d at %.1f s emulated (%s); the console before it:\n%s"
            % (self.resets, self.emulated_s(), self._reset_state(), self.output[-1500:])
        )
        self.device._on_watchdog_trigger()
        for gpio in self._traced:
            self.trace.append((self.emulated_s(), gpio, self.mcu.gpio[gpio].value))

    def _reset_state(self):
        """Where the reset found the guest: why the watchdog fired, what the core ran, and when
        Python last kicked _tinyctrl's watchdog: a stuck handler or a dead C feeder shows here
        as a kick that is recent, a stalled asyncio loop as one watchdog_s old."""
        read, core = self.mcu.read_uint32, self.mcu.core
        reason = read(WATCHDOG_REASON)
        why = "timer ran out" if reason & 1 else "forced" if reason & 2 else "reason %d" % reason
        state = [
            why,
            "exception %d" % core.ipsr if core.ipsr else "thread mode",
            "pc %08x" % core.pc,
            "interrupts masked" if core.pm else "interrupts enabled",
        ]
        if self._kick_ms_addr is not None:
            now_ms = ((read(TIMER_TIMERAWH) << 32 | read(TIMER_TIMERAWL)) // 1000) & 0xFFFFFFFF
            age = (now_ms - read(self._kick_ms_addr)) & 0xFFFFFFFF
            state.append("Python last kicked the watchdog %.1f s before" % (age / 1000))
        return ", ".join(state)

    def emulated_s(self):
        return self.sim.clock.nanos / 1e9

    def pace_idle(self):
        """From now on emulated time runs no faster than the PC's. While the guest idles,
        rp2040py jumps emulated time from alarm to alarm and serves the host's sockets only
        between its batches: a broker's answer (a PUBACK) would come after the jump, up to
        the guest's whole idle wait, not after about as long as it takes on a LAN. Paced, the
        batch ends every few ms (its wall-clock budget) and the answer comes then. Busy, the
        emulator is slower than the PC anyway and nothing waits."""
        ref = []  # (host s, emulated s) pacing counts from

        def tick():
            host, emulated = time.monotonic(), self.emulated_s()
            if not ref or (host - ref[0]) - (emulated - ref[1]) > 0.002:
                ref[:] = [host, emulated]  # the guest was busy: pace from here
            else:
                ahead = (emulated - ref[1]) - (host - ref[0])
                if ahead > 0.0005:
                    time.sleep(ahead)
            alarm.schedule(PACE_NS)

        alarm = self.sim.clock.create_alarm(tick)

        async def arm():
            alarm.schedule(PACE_NS)

        self.sim.call(arm())

    # -- console

    def _on_output(self, data):
        with self._output_cv:
            self._printed_at.append((len(self._output), self.emulated_s()))
            self._output += data
            self._output_cv.notify_all()
        if self._pty is not None:
            try:
                os.write(self._pty, data)
            except OSError:
                pass  # no one reading and the pty is full: dropped, as a UART would drop it

    def serve_console_pty(self):
        """Serve the USB console on a pseudo-terminal as well, as rp2040py's own `--pty` does,
        for programs that open a serial port (mpremote). Returns the pty's path. (rp2040py's
        PtyInteractiveRepl installs a SIGTERM handler, which only works on the main thread.)"""
        master, slave = pty.openpty()
        tty.setraw(slave)  # a byte pipe, as a USB CDC port is
        os.set_blocking(master, False)
        self._pty = master
        threading.Thread(target=self._pty_input, args=(master,), daemon=True).start()
        return os.ttyname(slave)

    def _pty_input(self, master):
        while True:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    self.write(os.read(master, 4096))
                except OSError:
                    pass

    def _feed_input(self):
        """Every emulated millisecond: move queued input into the CDC FIFO as far as it has
        room."""
        fifo = self.device.cdc.tx_fifo
        with self._input_lock:
            while self._input and not fifo.full:
                self.device.cdc.send_serial_byte(self._input.popleft())
        if self._held_read is not None and not fifo.empty:
            size, self._held_read = self._held_read, None
            self._answer_read(size)
        self._feeder.schedule(1_000_000)

    def _hold_empty_reads(self):
        """A real host NAKs the console's OUT endpoint in hardware while it has nothing to send,
        and the device sees nothing. rp2040py's host answers every OUT buffer the device arms at
        once, with a zero-length packet when it has no input; TinyUSB re-arms and gets another,
        a storm that took a quarter of the emulated core. Such a read is held here until there
        is input (_feed_input), and dropped when the USB controller resets."""
        cdc, usb = self.device.cdc, self.device.cdc.usb
        answer, reset = usb.on_endpoint_read, usb.on_reset

        def read(endpoint, size):
            if endpoint == cdc._out_endpoint and endpoint and cdc.tx_fifo.empty:
                self._held_read = size
            else:
                answer(endpoint, size)

        def on_reset():
            self._held_read = None
            reset()

        self._answer_read = lambda size: answer(cdc._out_endpoint, size)
        usb.on_endpoint_read, usb.on_reset = read, on_reset

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        with self._input_lock:
            self._input.extend(data)

    def interrupt(self):
        """Ctrl-C."""
        self.write(b"\x03")

    @property
    def output(self):
        """Everything the console printed so far, decoded."""
        with self._output_cv:
            return self._output.decode("utf-8", "replace")

    def mark(self):
        """A position in the console output, for `wait_for(..., since=mark)`."""
        with self._output_cv:
            return len(self._output)

    def printed_at(self, position):
        """The emulated time the console byte at `position` came: the harness sees output later
        than the guest printed it, by however long the emulator ran before this thread woke."""
        with self._output_cv:
            at = bisect.bisect_right(self._printed_at, (position, float("inf"))) - 1
            return self._printed_at[at][1] if at >= 0 else 0.0

    def wait_until(self, condition, timeout, what):
        """Poll `condition()` until it is true or `timeout` seconds of *emulated* time pass (the
        emulator runs many times slower than real time, and unevenly: wall-clock timeouts would
        be either flaky or needlessly long). Returns the emulated seconds it took."""
        start = self.emulated_s()
        wall_limit = time.monotonic() + WALL_PER_EMULATED_S * timeout + 60
        while not condition():
            if self.sim.engine_room_error:
                raise RuntimeError("the emulator crashed") from self.sim.engine_room_error
            if self.emulated_s() - start > timeout or time.monotonic() > wall_limit:
                raise TimeoutError("%s: not within %.1f s emulated" % (what, timeout))
            with self._output_cv:
                self._output_cv.wait(0.02)
        return self.emulated_s() - start

    def wait_for(self, text, timeout, since=0):
        """Wait (emulated `timeout` seconds) until the console shows `text` after position `since`;
        return the output from `since` to the end of the match."""
        needle = text.encode() if isinstance(text, str) else text
        found = []

        def seen():
            with self._output_cv:
                at = self._output.find(needle, since)
                if at >= 0:
                    found.append(self._output[since : at + len(needle)].decode("utf-8", "replace"))
            return bool(found)

        try:
            self.wait_until(seen, timeout, "console output %r" % text)
        except TimeoutError as e:
            raise TimeoutError(
                "%s; console since then:\n%s" % (e, self.output[since:][-1500:])
            ) from None
        return found[0]

    def repl(self, line, timeout=5):
        """Wait for an idle friendly REPL, type `line`; return what it printed before the next
        prompt."""
        self.wait_until(lambda: self.output.endswith(">>> "), timeout, "an idle REPL prompt")
        line = line.rstrip("\r\n")
        start = self.mark()
        self.write(line + "\r")
        # The answer follows the echo of the line (an earlier prompt may still be on its way).
        echo = self.wait_for(line + "\r\n", timeout, since=start)
        answer = self.wait_for("\n>>> ", timeout, since=start + len(echo.encode()) - 1)
        return answer[1 : -len(">>> ")].replace("\r", "").rstrip("\n")

    def exec_start(self, code, timeout=5):
        """Interrupt whatever runs, and start `code` through the raw REPL (as mpremote does)
        without waiting for it to finish; returns the console position where its output starts."""
        start = self.mark()
        self.write(b"\r\x03\x03\x01")
        self.wait_for("raw REPL; CTRL-B to exit\r\n>", timeout, since=start)
        start = self.mark()
        self.write(code.encode() + b"\x04")
        self.wait_for("OK", timeout, since=start)
        return start + 2

    def exec(self, code, timeout=30):
        """Run `code` through the raw REPL; return its stdout. Raises RuntimeError with the
        device's traceback if the code raised."""
        start = self.exec_start(code)
        reply = self.wait_for("\x04>", timeout, since=start)
        self.write(b"\x02")  # back to the friendly REPL
        stdout, stderr = reply[:-2].split("\x04", 1)
        if stderr:
            raise RuntimeError("device raised:\n" + stderr)
        return stdout.replace("\r", "")

    def idle(self, seconds):
        """Let `seconds` of emulated time pass."""
        end = self.emulated_s() + seconds
        self.wait_until(lambda: self.emulated_s() >= end, seconds + 1, "idling")

    # -- network faults (AccessPointBus, IsolatedNatBridge)

    def set_ap(self, ap):
        """The access point is "up", "gone" (router off) or de-authenticating us ("deauth")."""

        async def change():
            self.chip.bus.set_ap(ap)

        self.sim.call(change())

    def set_firewall(self, drop):
        """Drop (True) or pass (False) all traffic between the board and the services."""

        async def change():
            self.chip.bus.nat_bridge.set_firewall(drop)

        self.sim.call(change())

    # -- pins

    def level(self, gpio):
        """The level the board drives on `gpio`: 0, 1, or None if it is not an output."""
        state = self.mcu.gpio[gpio].value
        return {GPIOPinState.LOW: 0, GPIOPinState.HIGH: 1}.get(state)

    def drive(self, gpio, level):
        """Drive input `gpio` from outside: 0 (pulled to ground, e.g. a closed contact) or 1."""

        async def set_level():
            self.mcu.gpio[gpio].set_input_value(bool(level))

        self.sim.call(set_level())

    def input_to_output_ms(self, gpio, level, out, out_level, timeout):
        """Drive input `gpio` to `level` and wait until the board drives `out` to `out_level`;
        the emulated ms between the two, both taken on the emulator's clock (a pin listener)."""
        times = []

        def listener(_new, _old):
            if len(times) == 1 and self.level(out) == out_level:
                times.append(self.emulated_s())

        remove = self.mcu.gpio[out].add_listener(listener)

        async def set_level():
            times.append(self.emulated_s())
            self.mcu.gpio[gpio].set_input_value(bool(level))

        try:
            self.sim.call(set_level())
            self.wait_until(
                lambda: len(times) == 2,
                timeout,
                "GP%d to level %d after GP%d" % (out, out_level, gpio),
            )
        finally:
            remove()
        return (times[1] - times[0]) * 1000

    def wait_level(self, gpio, level, timeout):
        """Wait until the board drives `gpio` to `level`; return the emulated seconds it took."""
        return self.wait_until(
            lambda: self.level(gpio) == level, timeout, "GP%d to level %d" % (gpio, level)
        )
