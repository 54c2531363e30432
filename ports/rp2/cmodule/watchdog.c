// SPDX-License-Identifier: MIT
// _tinyctrl watchdog: a long-timeout watchdog, the reset cause and the scratch
// registers that carry counters across a watchdog reset.

#include "py/mperrno.h"
#include "py/runtime.h"
#include "hardware/watchdog.h"
#include "pico/time.h"

#include "modtinyctrl.h"

// Longest hardware watchdog period used; the RP2040 counter tops out at ~8.3 s.
#define HW_WDT_MAX_MS (8000)

// Watchdog scratch registers 4..7 belong to pico-sdk (reboot magic), 0..3 are ours.
#define SCRATCH_FREE (4)

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

// wdt_start(timeout_ms) -> None: reset the chip unless wdt_kick() is called at least
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
MP_DEFINE_CONST_FUN_OBJ_1(tinyctrl_wdt_start_obj, tinyctrl_wdt_start);

// wdt_kick() -> None: Python is alive; the feeder keeps the hardware watchdog fed.
static mp_obj_t tinyctrl_wdt_kick(void) {
    wdt_kick_ms = now_ms();
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_0(tinyctrl_wdt_kick_obj, tinyctrl_wdt_kick);

// wdt_stop() -> None: disarm, so a user who stopped the controller with Ctrl-C keeps the REPL.
static mp_obj_t tinyctrl_wdt_stop(void) {
    if (wdt_feeder_running) {
        cancel_repeating_timer(&wdt_feeder);
        wdt_feeder_running = false;
    }
    watchdog_disable();
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_0(tinyctrl_wdt_stop_obj, tinyctrl_wdt_stop);

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
MP_DEFINE_CONST_FUN_OBJ_0(tinyctrl_reset_cause_obj, tinyctrl_reset_cause);

static size_t get_scratch_index(mp_obj_t index_in) {
    mp_int_t index = mp_obj_get_int(index_in);
    if (index < 0 || index >= SCRATCH_FREE) {
        mp_raise_ValueError(MP_ERROR_TEXT("scratch index must be 0-3"));
    }
    return index;
}

// scratch_get(i) -> int: scratch word i (0-3). The scratch words are 32 bits
// that survive a watchdog reset (but not a power cycle).
static mp_obj_t tinyctrl_scratch_get(mp_obj_t index_in) {
    return mp_obj_new_int_from_uint(watchdog_hw->scratch[get_scratch_index(index_in)]);
}
MP_DEFINE_CONST_FUN_OBJ_1(tinyctrl_scratch_get_obj, tinyctrl_scratch_get);

// scratch_set(i, v) -> None: store v (truncated to 32 bits) in scratch word i.
static mp_obj_t tinyctrl_scratch_set(mp_obj_t index_in, mp_obj_t value_in) {
    watchdog_hw->scratch[get_scratch_index(index_in)] = mp_obj_get_int_truncated(value_in);
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_2(tinyctrl_scratch_set_obj, tinyctrl_scratch_set);
