// SPDX-License-Identifier: MIT
// The image's identity: `tinyctrl update` reads the board and version from this line in the
// UF2 to write the update's manifest, and the board reads it as _tinyctrl.IMAGE_ID to check
// an update's board. micropython.cmake sets TINYCTRL_BOARD (MICROPY_BOARD) and
// TINYCTRL_VERSION (modules/tinyctrl/__init__.py's __version__, the one version).

#include "py/objstr.h"

#include "modtinyctrl.h"

const MP_DEFINE_STR_OBJ(tinyctrl_image_id_obj,
    "tinyctrl-image board=" TINYCTRL_BOARD " version=" TINYCTRL_VERSION "\n");

// image_bytes() -> int: the bytes of flash this image holds from the application slot's start
// (what a firmware update's swap must move back if the new image rolls back).
static mp_obj_t tinyctrl_image_bytes(void) {
    extern char __flash_binary_start, __flash_binary_end;
    return MP_OBJ_NEW_SMALL_INT(&__flash_binary_end - &__flash_binary_start);
}
MP_DEFINE_CONST_FUN_OBJ_0(tinyctrl_image_bytes_obj, tinyctrl_image_bytes);
