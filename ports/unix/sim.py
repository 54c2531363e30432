# SPDX-License-Identifier: MIT
# The simulator: the real controller on the MicroPython unix port, with simulated pins and Wi-Fi.
#
#   micropython sim.py CONFIG [--wifi-down]
#
# stdin: "GP1=1" sets a simulated contact (1 = closed), "WIFI=0" / "WIFI=1" drops or restores
# the link, "HEAP" prints "HEAP=<bytes in use after gc.collect()>", "RESET" resets the board
# as the watchdog would (port.watchdog_reset(): RAM lost, counters and relay states kept, the
# cause "watchdog"), "POWERCYCLE" cuts the power (counters and relay states in RAM lost, files
# kept). stdout: one line per output change, "GP16=1". Logs go to stderr. End of input
# or Ctrl-C stops it. A reset restarts the controller with pins off and config.json read
# again, as a board would; the board's files (relay_state) are beside CONFIG.
import asyncio
import gc
import sys

import network
import port
from tinyctrl import main
from tinyctrl import log


class Simulator:
    def __init__(self, prefix):
        self.prefix = prefix
        self.reset = None  # port.reset or port.power_cut, for serve() to call
        port.on_output = self.show

    def show(self, gpio, value):
        print("%s%d=%d" % (self.prefix, gpio, value))

    def command(self, line):
        if line == "HEAP":
            gc.collect()
            return print("HEAP=%d" % gc.mem_alloc())
        if line in ("RESET", "POWERCYCLE"):
            self.reset = port.watchdog_reset if line == "RESET" else port.power_cut
            return True  # stop reading: serve() resets
        name, _, value = line.partition("=")
        if value not in ("0", "1"):
            return log("sim: expected NAME=0 or NAME=1, got %r" % line)
        if name == "WIFI":
            network.set_link(value == "1")
            return log("sim: Wi-Fi link", "up" if value == "1" else "down")
        if name.startswith(self.prefix) and name[len(self.prefix) :].isdigit():
            contact = port.contacts.get(int(name[len(self.prefix) :]))
            if contact:
                return contact.close(value == "1")
        log("sim: %s is not a simulated contact" % name)

    async def read_stdin(self):
        reader = asyncio.StreamReader(sys.stdin.buffer)
        while True:
            line = await reader.readline()
            if not line:
                return  # end of input
            line = line.decode().strip()
            if line and self.command(line):
                return


async def serve(controller, sim):
    """Run the controller until end of input; port.Reset propagates to run()."""
    main_task = asyncio.current_task()

    async def until_eof():
        await sim.read_stdin()
        main_task.cancel()

    stdin = asyncio.create_task(until_eof())
    try:
        await controller.run()
    except asyncio.CancelledError:
        pass
    finally:
        stdin.cancel()
    if sim.reset:
        reset, sim.reset = sim.reset, None
        reset()


def run(argv):
    if len(argv) < 2:
        print("usage: sim.py CONFIG [--wifi-down]", file=sys.stderr)
        return 2
    if "--wifi-down" in argv:
        network.set_link(False)
    port.use_config(argv[1])
    sim = None
    while True:
        cfg = main.load(argv[1])  # at every start, as a board reads it after each reset
        if not cfg:
            return 1
        if sim is None:
            sim = Simulator(cfg["gpio"]["prefix"])
        sim.prefix = cfg["gpio"]["prefix"]
        controller = main.build(cfg)
        if not controller:
            return 1
        try:
            asyncio.run(serve(controller, sim))
            return 0
        except port.Reset:
            log("sim: reset")
        except KeyboardInterrupt:
            return 0
        finally:
            asyncio.new_event_loop()


sys.exit(run(sys.argv))
