# SPDX-License-Identifier: MIT
"""The board's config.json: the emulated access point, the local broker by name, the
contract's pin layout; and its broker section for verified TLS."""

from emu.isolation import BROKER_ADDR, TLS_NAME, TLS_PORT
from rp2040py.external.cyw43 import bus


def device_config(topic="tinyctrl/emu", **overrides):
    """A config.json for the emulated Pico W: the emulated AP, the local broker by name, and the
    contract's pin layout. `overrides` replace whole top-level sections."""
    cfg = {
        "wifi": {
            "ssid": bus._FAKE_AP_SSID.decode(),
            "password": "",
            "max_retries": 30,
            "reset_delay_s": 600,
        },
        "mqtt": {
            "server": "broker.tinyctrl.test",
            "port": BROKER_ADDR[1],
            "ssl": False,
            "user": "",
            "password": "",
            "client_id": "tinyctrl-emu",
            "topic": topic,
            # In emulated seconds to the device but real ones to mosquitto, which drops a client
            # silent for 1.5 keepalives: at ~30x slower than real time, 120 would lose the broker
            # after 3 real minutes, before the device's first ping is due.
            "keepalive": 3600,
        },
        "gpio": {
            "prefix": "GP",
            "relay": [16, 17],
            "momentary": {"18": 2, "19": 2},
            "contact": [0, 1, 2, 3],
            "notify": [0, 1, 16, 17],
            "active_low": True,
        },
        "ntp": {"host": "ntp.tinyctrl.test", "interval_s": 86400, "force_wait_s": 180},
        "ip_provider": "http://ip.tinyctrl.test/",
        "timezone": "EST",
    }
    cfg.update(overrides)
    return cfg


def tls_mqtt_config(mqtt):
    """`mqtt` (a config section) for the TLS broker, verifying its certificate and name."""
    return dict(mqtt, server=TLS_NAME, port=TLS_PORT, ssl=True, ca_file="ca.pem")
