# tinyctrl: MQTT relay/contact controller for the Raspberry Pi Pico W.
import sys

__version__ = "0.7.0"


def log(*args):
    print("tinyctrl:", *args, file=sys.stderr)
