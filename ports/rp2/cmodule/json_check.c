// SPDX-License-Identifier: MIT
// _tinyctrl strict JSON check of a request (json_check_core): the board's json.loads then
// parses what passed, in C instead of a reader stepping through the text in Python.

#include "py/runtime.h"

#include "json_check_core.h"
#include "modtinyctrl.h"

// json_check(text, code_key, max_depth) -> (status, at, code)
// status 0: valid, and `code` the text of a top-level `code_key` number written with leading
// zeros (else None); 1: not JSON from byte `at` on; 2: nested deeper than max_depth.
static mp_obj_t tinyctrl_json_check(mp_obj_t text_in, mp_obj_t code_key_in, mp_obj_t depth_in) {
    size_t n, key_len = 0;
    const char *s = mp_obj_str_get_data(text_in, &n);
    const char *key = code_key_in == mp_const_none ? NULL : mp_obj_str_get_data(code_key_in, &key_len);
    json_check_result_t result;
    int status = json_check(s, n, key, key_len, mp_obj_get_int(depth_in), &result);
    mp_obj_t code = mp_const_none;
    if (status == JSON_OK && result.code_end) {
        code = mp_obj_new_str(s + result.code_start, result.code_end - result.code_start);
    }
    mp_obj_t out[3] = { MP_OBJ_NEW_SMALL_INT(status), mp_obj_new_int_from_uint(result.at), code };
    return mp_obj_new_tuple(3, out);
}
MP_DEFINE_CONST_FUN_OBJ_3(tinyctrl_json_check_obj, tinyctrl_json_check);
