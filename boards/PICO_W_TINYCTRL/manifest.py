# SPDX-License-Identifier: MIT
# The firmware's frozen modules: the rp2 port's files, then the portable tinyctrl package.
# Relative paths are relative to this file.

# The rp2 port's own modules: _boot.py mounts the filesystem, rp2.py wraps _rp2.
freeze("$(PORT_DIR)/modules")
# tinyctrl's hardware layer for the Pico W.
module("port.py", base_path="../../ports/rp2")
# Run at boot: a frozen main.py takes precedence over one on the filesystem.
module("main.py", base_path="../../ports/rp2")

include("../../manifest.py")
