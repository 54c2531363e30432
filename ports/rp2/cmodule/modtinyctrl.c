// _tinyctrl: TOTP primitives and a watchdog that tolerates long blocking calls.

#include "py/mperrno.h"
#include "py/runtime.h"
#include "hardware/watchdog.h"
#include "pico/time.h"

#include "totp_core.h"

// Longest hardware watchdog period used; the RP2040 counter tops out at ~8.3 s.
#define HW_WDT_MAX_MS (8000)

// Watchdog scratch registers 4..7 belong to pico-sdk (reboot magic), 0..3 are ours.
#define SCRATCH_FREE (4)

enum { RESET_POWER, RESET_WATCHDOG, RESET_SOFT };

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
static MP_DEFINE_CONST_FUN_OBJ_2(tinyctrl_hmac_sha1_obj, tinyctrl_hmac_sha1);

// hotp(key, counter, digits=6) -> int
static mp_obj_t tinyctrl_hotp(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t key;
    mp_get_buffer_raise(args[0], &key, MP_BUFFER_READ);
    uint64_t counter = get_non_negative(args[1]);
    uint32_t digits = n_args > 2 ? get_digits(args[2]) : 6;
    return mp_obj_new_int_from_uint(totp_hotp(key.buf, key.len, counter, digits));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(tinyctrl_hotp_obj, 2, 3, tinyctrl_hotp);

// totp_match(key, code, counter, back, forward, digits=6) -> matching counter or -1
static mp_obj_t tinyctrl_totp_match(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t key;
    mp_get_buffer_raise(args[0], &key, MP_BUFFER_READ);
    uint64_t counter = get_non_negative(args[2]);
    mp_int_t back = get_non_negative(args[3]);
    mp_int_t forward = get_non_negative(args[4]);
    uint32_t digits = n_args > 5 ? get_digits(args[5]) : 6;
    // As totp.is_code: only a small int of 0..10**digits-1 can match. Floats, bools and big
    // ints (2**32 and more would be truncated to uint32_t) match nothing (issue 9, finding 11).
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
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(tinyctrl_totp_match_obj, 5, 6, tinyctrl_totp_match);

// The hardware watchdog is fed from a pico-sdk repeating timer on the default
// alarm pool (hardware alarm 3, the one machine.Timer uses too), but only while
// Python has kicked within the last wdt_timeout_ms. So a hung VM still resets
// the chip, yet timeouts can exceed the hardware limit. Statics, not GC heap:
// the timer keeps running across a soft reboot, as a watchdog should.
static repeating_timer_t wdt_feeder;
static bool wdt_feeder_running;
static volatile uint32_t wdt_timeout_ms;
static volatile uint32_t wdt_kick_ms;

static uint32_t now_ms(void) {
    return to_ms_since_boot(get_absolute_time());
}

static bool wdt_feed(repeating_timer_t *timer) {
    (void)timer;
    if (now_ms() - wdt_kick_ms < wdt_timeout_ms) {
        watchdog_update();
    }
    return true;
}

// wdt_start(timeout_ms): reset the chip unless wdt_kick() is called at least
// every timeout_ms (the reset follows within one hardware period after that).
static mp_obj_t tinyctrl_wdt_start(mp_obj_t timeout_in) {
    mp_int_t timeout = mp_obj_get_int(timeout_in);
    if (timeout < 1) {
        mp_raise_ValueError(MP_ERROR_TEXT("timeout must be > 0"));
    }
    uint32_t hw_ms = MIN(timeout, HW_WDT_MAX_MS);
    if (wdt_feeder_running) {
        cancel_repeating_timer(&wdt_feeder);
    }
    wdt_timeout_ms = timeout;
    wdt_kick_ms = now_ms();
    watchdog_enable(hw_ms, true);
    // Feed several times per hardware period; a negative delay means a fixed rate.
    wdt_feeder_running = add_repeating_timer_ms(-(int32_t)MAX(hw_ms / 4, 1), wdt_feed, NULL, &wdt_feeder);
    if (!wdt_feeder_running) {
        mp_raise_OSError(MP_ENOMEM);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(tinyctrl_wdt_start_obj, tinyctrl_wdt_start);

static mp_obj_t tinyctrl_wdt_kick(void) {
    wdt_kick_ms = now_ms();
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(tinyctrl_wdt_kick_obj, tinyctrl_wdt_kick);

// wdt_stop(): disarm, so a user who stopped the controller with Ctrl-C keeps the REPL.
static mp_obj_t tinyctrl_wdt_stop(void) {
    if (wdt_feeder_running) {
        cancel_repeating_timer(&wdt_feeder);
        wdt_feeder_running = false;
    }
    watchdog_disable();
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(tinyctrl_wdt_stop_obj, tinyctrl_wdt_stop);

// reset_cause() -> RESET_POWER, RESET_WATCHDOG (timer expired) or RESET_SOFT
// (a forced reboot: machine.reset(), picotool, the bootloader).
static mp_obj_t tinyctrl_reset_cause(void) {
    uint32_t reason = watchdog_hw->reason;
    if (reason & WATCHDOG_REASON_TIMER_BITS) {
        return MP_OBJ_NEW_SMALL_INT(RESET_WATCHDOG);
    }
    if (reason & WATCHDOG_REASON_FORCE_BITS) {
        return MP_OBJ_NEW_SMALL_INT(RESET_SOFT);
    }
    return MP_OBJ_NEW_SMALL_INT(RESET_POWER);
}
static MP_DEFINE_CONST_FUN_OBJ_0(tinyctrl_reset_cause_obj, tinyctrl_reset_cause);

static size_t get_scratch_index(mp_obj_t index_in) {
    mp_int_t index = mp_obj_get_int(index_in);
    if (index < 0 || index >= SCRATCH_FREE) {
        mp_raise_ValueError(MP_ERROR_TEXT("scratch index must be 0-3"));
    }
    return index;
}

// scratch_get(i) / scratch_set(i, v): 32-bit words that survive a watchdog
// reset (but not a power cycle).
static mp_obj_t tinyctrl_scratch_get(mp_obj_t index_in) {
    return mp_obj_new_int_from_uint(watchdog_hw->scratch[get_scratch_index(index_in)]);
}
static MP_DEFINE_CONST_FUN_OBJ_1(tinyctrl_scratch_get_obj, tinyctrl_scratch_get);

static mp_obj_t tinyctrl_scratch_set(mp_obj_t index_in, mp_obj_t value_in) {
    watchdog_hw->scratch[get_scratch_index(index_in)] = mp_obj_get_int_truncated(value_in);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(tinyctrl_scratch_set_obj, tinyctrl_scratch_set);

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
