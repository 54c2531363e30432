# Top-level manifest: the modules frozen into the tinyctrl firmware.
# Relative paths are relative to this file; $(MQTT_AS_DIR) is set by the board
# (boards/PICO_W_TINYCTRL/mpconfigboard.cmake) to the pinned micropython-mqtt.

# The rp2 port's own modules: _boot.py mounts the filesystem, rp2.py wraps _rp2.
freeze("$(PORT_DIR)/modules")
include("$(MPY_DIR)/extmod/asyncio")
require("ssl")

package("mqtt_as", files=["__init__.py"], base_path="$(MQTT_AS_DIR)")

package("tinyctrl", base_path="modules")
module("port.py", base_path="ports/rp2")
# Run at boot: a frozen main.py takes precedence over one on the filesystem.
module("main.py", base_path="ports/rp2")
