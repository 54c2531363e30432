// SPDX-License-Identifier: MIT
// _tinyctrl: TOTP primitives (totp.c), a watchdog that tolerates long
// blocking calls (watchdog.c), ECDSA P-256 verification (ecdsa.c), the image's identity
// (image_id.c), a strict JSON check of requests (json_check.c) and the flash an update is
// written to (update_flash.c). This file holds only the module table.

#include "py/runtime.h"

#include "modtinyctrl.h"

static const mp_rom_map_elem_t tinyctrl_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__tinyctrl) },
    { MP_ROM_QSTR(MP_QSTR_hmac_sha1), MP_ROM_PTR(&tinyctrl_hmac_sha1_obj) },
    { MP_ROM_QSTR(MP_QSTR_hotp), MP_ROM_PTR(&tinyctrl_hotp_obj) },
    { MP_ROM_QSTR(MP_QSTR_totp_match), MP_ROM_PTR(&tinyctrl_totp_match_obj) },
    { MP_ROM_QSTR(MP_QSTR_wdt_start), MP_ROM_PTR(&tinyctrl_wdt_start_obj) },
    { MP_ROM_QSTR(MP_QSTR_wdt_kick), MP_ROM_PTR(&tinyctrl_wdt_kick_obj) },
    { MP_ROM_QSTR(MP_QSTR_wdt_stop), MP_ROM_PTR(&tinyctrl_wdt_stop_obj) },
    { MP_ROM_QSTR(MP_QSTR_reset_cause), MP_ROM_PTR(&tinyctrl_reset_cause_obj) },
    { MP_ROM_QSTR(MP_QSTR_scratch_get), MP_ROM_PTR(&tinyctrl_scratch_get_obj) },
    { MP_ROM_QSTR(MP_QSTR_scratch_set), MP_ROM_PTR(&tinyctrl_scratch_set_obj) },
    { MP_ROM_QSTR(MP_QSTR_ecdsa_verify), MP_ROM_PTR(&tinyctrl_ecdsa_verify_obj) },
    { MP_ROM_QSTR(MP_QSTR_IMAGE_ID), MP_ROM_PTR(&tinyctrl_image_id_obj) },
    { MP_ROM_QSTR(MP_QSTR_image_bytes), MP_ROM_PTR(&tinyctrl_image_bytes_obj) },
    { MP_ROM_QSTR(MP_QSTR_json_check), MP_ROM_PTR(&tinyctrl_json_check_obj) },
    { MP_ROM_QSTR(MP_QSTR_flash_read), MP_ROM_PTR(&tinyctrl_flash_read_obj) },
    { MP_ROM_QSTR(MP_QSTR_flash_erase), MP_ROM_PTR(&tinyctrl_flash_erase_obj) },
    { MP_ROM_QSTR(MP_QSTR_flash_program), MP_ROM_PTR(&tinyctrl_flash_program_obj) },
    { MP_ROM_QSTR(MP_QSTR_RESET_POWER), MP_ROM_INT(RESET_POWER) },
    { MP_ROM_QSTR(MP_QSTR_RESET_WATCHDOG), MP_ROM_INT(RESET_WATCHDOG) },
    { MP_ROM_QSTR(MP_QSTR_RESET_SOFT), MP_ROM_INT(RESET_SOFT) },
};
static MP_DEFINE_CONST_DICT(tinyctrl_module_globals, tinyctrl_module_globals_table);

const mp_obj_module_t tinyctrl_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&tinyctrl_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR__tinyctrl, tinyctrl_user_cmodule);
