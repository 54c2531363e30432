// SPDX-License-Identifier: MIT
// Flash for firmware updates: the download slot an update is written to, and the
// bootloader's flag log (ports/rp2/bootloader), which the image appends its records to. Only
// these regions can be erased or programmed from here: the running image, the bootloader and
// the filesystem stay out of reach of a bug in Python. The layout is tinyctrl/update.py's.

#include "py/runtime.h"
#include "hardware/flash.h"
#include "hardware/sync.h"
#include "rp2_flash.h"

#include "modtinyctrl.h"

#define FLAG_LOG_START (0x009000)
#define DOWNLOAD_START (0x0E8000)
#define SLOT_BYTES (888 * 1024)
#define FLASH_BYTES (2048 * 1024)

static bool in_download_slot(mp_int_t offset, mp_int_t len) {
    return offset >= DOWNLOAD_START && len >= 0 && offset + len <= DOWNLOAD_START + SLOT_BYTES;
}

static bool in_flag_log(mp_int_t offset, mp_int_t len) {
    return offset >= FLAG_LOG_START && len >= 0 && offset + len <= FLAG_LOG_START + FLASH_SECTOR_SIZE;
}

// The ROM's flash routines leave the flash at its slow boot timing: MicroPython's is set back.
static void end_flash_op(uint32_t state) {
    restore_interrupts(state);
    rp2_flash_set_timing();
}

// flash_read(offset, n) -> bytes: n bytes of flash at offset (from the start of flash).
static mp_obj_t tinyctrl_flash_read(mp_obj_t offset_in, mp_obj_t n_in) {
    mp_int_t offset = mp_obj_get_int(offset_in);
    mp_int_t n = mp_obj_get_int(n_in);
    if (offset < 0 || n < 0 || offset + n > FLASH_BYTES) {
        mp_raise_ValueError(MP_ERROR_TEXT("outside flash"));
    }
    return mp_obj_new_bytes((const byte *)(XIP_BASE + offset), n);
}
MP_DEFINE_CONST_FUN_OBJ_2(tinyctrl_flash_read_obj, tinyctrl_flash_read);

// flash_erase(offset) -> None: erase the 4 KB sector of the download slot at offset.
static mp_obj_t tinyctrl_flash_erase(mp_obj_t offset_in) {
    mp_int_t offset = mp_obj_get_int(offset_in);
    if (offset % FLASH_SECTOR_SIZE || !in_download_slot(offset, FLASH_SECTOR_SIZE)) {
        mp_raise_ValueError(MP_ERROR_TEXT("not a sector of the download slot"));
    }
    uint32_t state = save_and_disable_interrupts();
    flash_range_erase(offset, FLASH_SECTOR_SIZE);
    end_flash_op(state);
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_1(tinyctrl_flash_erase_obj, tinyctrl_flash_erase);

// flash_program(offset, data) -> None: program whole 256-byte pages of the download slot or
// the flag log (bits go from 1 to 0 only; 0xff bytes leave flash as it is).
static mp_obj_t tinyctrl_flash_program(mp_obj_t offset_in, mp_obj_t data_in) {
    mp_int_t offset = mp_obj_get_int(offset_in);
    mp_buffer_info_t data;
    mp_get_buffer_raise(data_in, &data, MP_BUFFER_READ);
    mp_int_t len = data.len;
    if (offset % FLASH_PAGE_SIZE || len % FLASH_PAGE_SIZE
        || !(in_download_slot(offset, len) || in_flag_log(offset, len))) {
        mp_raise_ValueError(MP_ERROR_TEXT("not whole pages of the download slot or flag log"));
    }
    uint32_t state = save_and_disable_interrupts();
    flash_range_program(offset, data.buf, len);
    end_flash_op(state);
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_2(tinyctrl_flash_program_obj, tinyctrl_flash_program);
