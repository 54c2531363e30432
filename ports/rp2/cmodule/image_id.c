// SPDX-License-Identifier: MIT
// The image's identity: `tinyctrl update` reads the board and version from this line in the
// UF2 to write the update's manifest, and the board reads it as _tinyctrl.IMAGE_ID to check
// an update's board. micropython.cmake sets TINYCTRL_BOARD (MICROPY_BOARD) and
// TINYCTRL_VERSION (modules/tinyctrl/__init__.py's __version__, the one version).

#include "py/objstr.h"

#include "modtinyctrl.h"

const MP_DEFINE_STR_OBJ(tinyctrl_image_id_obj,
    "tinyctrl-image board=" TINYCTRL_BOARD " version=" TINYCTRL_VERSION "\n");
