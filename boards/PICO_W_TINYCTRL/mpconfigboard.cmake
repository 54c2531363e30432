# SPDX-License-Identifier: MIT
# cmake file for the Raspberry Pi Pico W running tinyctrl

set(PICO_BOARD "pico_w")

set(MICROPY_PY_LWIP ON)
set(MICROPY_PY_NETWORK_CYW43 ON)
# Bluetooth (btstack) stays off: tinyctrl only talks MQTT over Wi-Fi.
# Upstream boards all have it on, and only its libraries put pico-sdk's
# pico/cyw43_driver.h (needed by cyw43_bus_pio_spi.c) on the include path, so
# add those headers once the firmware target exists.
cmake_language(DEFER CALL target_link_libraries firmware pico_cyw43_driver_headers)

# The tinyctrl repository root, two levels up from this board.
get_filename_component(TINYCTRL_DIR ${MICROPY_BOARD_DIR}/../.. ABSOLUTE)

set(USER_C_MODULES ${TINYCTRL_DIR}/ports/rp2/cmodule)

# Pinned checkout of peterhinch/micropython-mqtt, normally passed in by build.sh.
if(NOT MQTT_AS_DIR)
    set(MQTT_AS_DIR $ENV{MQTT_AS_DIR})
endif()
if(NOT EXISTS ${MQTT_AS_DIR}/mqtt_as/__init__.py)
    message(FATAL_ERROR "Set MQTT_AS_DIR to a micropython-mqtt checkout (or run ./build.sh)")
endif()
set(MICROPY_MANIFEST_MQTT_AS_DIR ${MQTT_AS_DIR})

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)

# The image runs from the application slot, after the bootloader that swaps in updates
# (ports/rp2/bootloader; tinyctrl/update.py has the layout): MicroPython's own linker script
# with its flash moved there, and without the second stage boot, which the bootloader holds.
set(TINYCTRL_APP_START 0x1000A000)
set(TINYCTRL_SLOT_BYTES 888k)
file(READ ${MICROPY_PORT_DIR}/memmap_mp_rp2040.ld TINYCTRL_LD)
string(REPLACE "ORIGIN = 0x10000000, LENGTH = __micropy_flash_size__"
    "ORIGIN = ${TINYCTRL_APP_START}, LENGTH = ${TINYCTRL_SLOT_BYTES}" TINYCTRL_LD "${TINYCTRL_LD}")
string(REGEX REPLACE "\\.boot2 : {[^}]*} > FLASH[ \n]*ASSERT\\([^)]*\\)"
    "/DISCARD/ : { *(.boot2) }" TINYCTRL_LD "${TINYCTRL_LD}")
if(NOT TINYCTRL_LD MATCHES "ORIGIN = ${TINYCTRL_APP_START}" OR TINYCTRL_LD MATCHES "__boot2_end__")
    message(FATAL_ERROR "memmap_mp_rp2040.ld changed: the application slot's linker script needs a look")
endif()
set(MICROPY_BOARD_LINKER_SCRIPT ${CMAKE_BINARY_DIR}/memmap_tinyctrl_app.ld)
file(WRITE ${MICROPY_BOARD_LINKER_SCRIPT} "${TINYCTRL_LD}")
