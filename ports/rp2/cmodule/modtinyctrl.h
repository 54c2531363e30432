// SPDX-License-Identifier: MIT
// _tinyctrl's functions, one feature per C file, gathered by modtinyctrl.c's table.
#ifndef TINYCTRL_MODTINYCTRL_H
#define TINYCTRL_MODTINYCTRL_H

#include "py/obj.h"
#include "py/objstr.h"

// totp.c
MP_DECLARE_CONST_FUN_OBJ_2(tinyctrl_hmac_sha1_obj);
MP_DECLARE_CONST_FUN_OBJ_VAR_BETWEEN(tinyctrl_hotp_obj);
MP_DECLARE_CONST_FUN_OBJ_VAR_BETWEEN(tinyctrl_totp_match_obj);

// watchdog.c
enum { RESET_POWER, RESET_WATCHDOG, RESET_SOFT };
MP_DECLARE_CONST_FUN_OBJ_1(tinyctrl_wdt_start_obj);
MP_DECLARE_CONST_FUN_OBJ_0(tinyctrl_wdt_kick_obj);
MP_DECLARE_CONST_FUN_OBJ_0(tinyctrl_wdt_stop_obj);
MP_DECLARE_CONST_FUN_OBJ_0(tinyctrl_reset_cause_obj);
MP_DECLARE_CONST_FUN_OBJ_1(tinyctrl_scratch_get_obj);
MP_DECLARE_CONST_FUN_OBJ_2(tinyctrl_scratch_set_obj);

// ecdsa.c
MP_DECLARE_CONST_FUN_OBJ_3(tinyctrl_ecdsa_verify_obj);

// image_id.c
extern const mp_obj_str_t tinyctrl_image_id_obj;
MP_DECLARE_CONST_FUN_OBJ_0(tinyctrl_image_bytes_obj);

// json_check.c
MP_DECLARE_CONST_FUN_OBJ_3(tinyctrl_json_check_obj);

// update_flash.c
MP_DECLARE_CONST_FUN_OBJ_2(tinyctrl_flash_read_obj);
MP_DECLARE_CONST_FUN_OBJ_1(tinyctrl_flash_erase_obj);
MP_DECLARE_CONST_FUN_OBJ_2(tinyctrl_flash_program_obj);

#endif // TINYCTRL_MODTINYCTRL_H
