# SPDX-License-Identifier: MIT
# Frozen boot hook: the rp2 port runs a frozen main.py after _boot.py/boot.py.
import tinyctrl.main

tinyctrl.main.run()
