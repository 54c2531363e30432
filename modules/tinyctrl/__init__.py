# tinyctrl: MQTT relay/contact controller for the Raspberry Pi Pico W.
VERSION = "1.0.0"
