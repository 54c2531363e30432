# SPDX-License-Identifier: MIT
"""Without mqtt.client_id the device connects as tinyctrl-<board id in hex>: the port gives the
board id (`port.unique_id()`), portable code (tinyctrl/main.py) builds the name once."""

import os

from simharness import Client, Sim, base_config, state, wait_until

SIM_BOARD_ID = b"tinysim1"  # ports/unix/machine.py: unique_id()


def test_default_client_id_is_built_from_the_board_id(services):
    broker, ntp, ip = services
    cfg = base_config(broker.port, ntp.port, ip.port)
    del cfg["mqtt"]["client_id"]
    client = Client(broker.port)
    m = client.mark()
    sim = Sim(cfg)
    try:
        client.wait_for(state("GP0", 0), since=m, timeout=40)
        expected = " as tinyctrl-%s " % SIM_BOARD_ID.hex()

        def broker_saw_it():
            with open(os.path.join(broker.dir, "log")) as f:
                return expected in f.read()

        wait_until(broker_saw_it, 10, "mosquitto logs a client connected%s" % expected)
    finally:
        client.close()
        sim.stop()
