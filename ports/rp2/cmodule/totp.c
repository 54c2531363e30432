// SPDX-License-Identifier: MIT
// _tinyctrl TOTP bindings: HMAC-SHA1, HOTP and TOTP window matching over totp_core.

#include "py/runtime.h"

#include "modtinyctrl.h"
#include "totp_core.h"

static uint32_t get_digits(mp_obj_t digits_in) {
    mp_int_t digits = mp_obj_get_int(digits_in);
    if (digits < 1 || digits > TOTP_MAX_DIGITS) {
        mp_raise_ValueError(MP_ERROR_TEXT("digits must be 1-9"));
    }
    return digits;
}

static mp_int_t get_non_negative(mp_obj_t arg) {
    mp_int_t value = mp_obj_get_int(arg);
    if (value < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("must be >= 0"));
    }
    return value;
}

// hmac_sha1(key, msg) -> bytes(20)
static mp_obj_t tinyctrl_hmac_sha1(mp_obj_t key_in, mp_obj_t msg_in) {
    mp_buffer_info_t key, msg;
    mp_get_buffer_raise(key_in, &key, MP_BUFFER_READ);
    mp_get_buffer_raise(msg_in, &msg, MP_BUFFER_READ);
    uint8_t mac[TOTP_SHA1_DIGEST_SIZE];
    totp_hmac_sha1(key.buf, key.len, msg.buf, msg.len, mac);
    return mp_obj_new_bytes(mac, sizeof(mac));
}
MP_DEFINE_CONST_FUN_OBJ_2(tinyctrl_hmac_sha1_obj, tinyctrl_hmac_sha1);

// hotp(key, counter, digits=6) -> int
static mp_obj_t tinyctrl_hotp(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t key;
    mp_get_buffer_raise(args[0], &key, MP_BUFFER_READ);
    uint64_t counter = get_non_negative(args[1]);
    uint32_t digits = n_args > 2 ? get_digits(args[2]) : 6;
    return mp_obj_new_int_from_uint(totp_hotp(key.buf, key.len, counter, digits));
}
MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(tinyctrl_hotp_obj, 2, 3, tinyctrl_hotp);

// totp_match(key, code, counter, back, forward, digits=6) -> matching counter or -1
static mp_obj_t tinyctrl_totp_match(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t key;
    mp_get_buffer_raise(args[0], &key, MP_BUFFER_READ);
    uint64_t counter = get_non_negative(args[2]);
    mp_int_t back = get_non_negative(args[3]);
    mp_int_t forward = get_non_negative(args[4]);
    uint32_t digits = n_args > 5 ? get_digits(args[5]) : 6;
    // As totp.is_code: only a small int of 0..10**digits-1 can match. Floats, bools and big
    // ints (2**32 and more would be truncated to uint32_t) match nothing.
    if (!mp_obj_is_small_int(args[1])) {
        return MP_OBJ_NEW_SMALL_INT(-1);
    }
    mp_int_t code = MP_OBJ_SMALL_INT_VALUE(args[1]);
    mp_int_t limit = 1;
    for (uint32_t i = 0; i < digits; i++) {
        limit *= 10;
    }
    if (code < 0 || code >= limit) {
        return MP_OBJ_NEW_SMALL_INT(-1);
    }
    int64_t match = totp_match(key.buf, key.len, code, counter, back, forward, digits);
    return mp_obj_new_int_from_ll(match);
}
MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(tinyctrl_totp_match_obj, 5, 6, tinyctrl_totp_match);
