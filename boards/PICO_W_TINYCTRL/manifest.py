# Everything tinyctrl freezes is listed in the top-level manifest.
include("../../manifest.py")
