# SPDX-License-Identifier: MIT
# tinyctrl's package manifest: the portable controller and what it needs, on any port.
# A board manifest (boards/PICO_W_TINYCTRL/manifest.py) adds its port's files and includes
# this one, as MicroPython's boards do. Relative paths are relative to this file;
# $(MQTT_AS_DIR) is set by the board (mpconfigboard.cmake) to the pinned micropython-mqtt.
metadata(
    description="MQTT relay and contact controller for the Raspberry Pi Pico W",
    version="1.1.0",  # = tinyctrl.__version__ (tests/unit/test_version.py)
    license="MIT",
)

include("$(MPY_DIR)/extmod/asyncio")
require("ssl")

# mqtt_v5_properties: MQTT 5 (mqtt.version), imported by mqtt_as when a client asks for it.
package("mqtt_as", files=["__init__.py", "mqtt_v5_properties.py"], base_path="$(MQTT_AS_DIR)")

package("tinyctrl", base_path="modules")
