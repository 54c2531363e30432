# tinyctrl: MQTT relay/contact controller for the Raspberry Pi Pico W.
__version__ = "0.7.0"
