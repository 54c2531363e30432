# SPDX-License-Identifier: MIT
"""Config files in the seed project's format (mqtt_tiny_controller_config.py), written for the
`tinyctrl config import` tests: SEED_SET is the last version (momentary pins as a set, MFA on);
SEED_DICT an older one (momentary pins with their own waits, MFA off, -1 values)."""

SEED_SET = """
# mqtt_tiny_controller_config.py (seed format): momentary as a set, MFA on
wifi_ssid = "HomeWifi"
wifi_pass = "wifi-secret-pw"
wifi_max_retries = 30
wifi_reset_delay_in_seconds = 600
broker_server = "xxxx.s1.eu.hivemq.cloud"
broker_user = "pico"
broker_pass = "broker-secret-pw"
mqtt_topic = "home/pico"
mqtt_client_id = b"pico-garage"
mqtt_qos = 1
mqtt_retain = False
mqtt_clean = False
gpio_prefix = "GP"
publish_counter_max = 20
publish_threshold_in_seconds = 10
hardware_modified_cooldown_period_in_seconds = 2
hardware_modified_max = 5
hardware_modified_threshold_in_seconds = 60
hardware_violation_max = 3
scheduled_publish_in_seconds = 7200
momentary_switch_default_wait_in_seconds = 3
gpio_pins_for_relay_switch = {16, 17}
gpio_pins_for_momentary_relay_switch = {18, 19}
gpio_pins_for_contact_switch = {0, 1, 2, 3}
gpio_pins_for_notification = {0, 1, 16, 17}
command_keyname = "CMD"
commands = ["stats", "getip", "refresh"]
json_ip_provider = "https://jsonip.com"
ip_keyname = "IP"
time_keyname = "TIME"
time_zone_name = "EST"
notification_keyname = "NOTIFY"
scheduled_clock_sync_in_seconds = 86400
forced_clock_sync_wait_in_seconds = 180
default_clock_year_in_unix_timestamp = 1704067200
totp_keyname = "MFA"
totp_max_expired_codes = 5
gpio_pins_for_totp_enabled = {16: ["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                                   "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"],
                              18: ["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"]}
"""

SEED_DICT = '''
"""An older version: momentary pins with their own waits, MFA off, -1 values."""
wifi_ssid = "HomeWifi"
wifi_pass = "wifi-secret-pw"
wifi_max_retries = -1
broker_server = "broker.local"
broker_user = ""
broker_pass = ""
mqtt_topic = "home/relays"
mqtt_client_id = b"pico-relays"
mqtt_qos = 0
gpio_pins_for_relay_switch = {16}
gpio_pins_for_momentary_relay_switch = {26: 10, 27: 2}
gpio_pins_for_contact_switch = set()
gpio_pins_for_notification = set()
hardware_modified_max = -1
scheduled_publish_in_seconds = -1
totp_max_expired_codes = 12
gpio_pins_for_totp_enabled = {}
'''
