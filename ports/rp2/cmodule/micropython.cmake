# SPDX-License-Identifier: MIT
# _tinyctrl user C module, one feature per file: TOTP primitives (totp.c over
# totp_core.c), the long-timeout watchdog (watchdog.c) and ECDSA P-256 verification of
# firmware update manifests (ecdsa.c, over the firmware's mbedtls), the image's board and
# version for `tinyctrl update` (image_id.c), the strict JSON check of requests (json_check.c
# over json_check_core.c), the stack for Python's call frames (pystack.c) and the flash an
# update is written to (update_flash.c); modtinyctrl.c is the table.
add_library(usermod_tinyctrl INTERFACE)

target_sources(usermod_tinyctrl INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/totp_core.c
    ${CMAKE_CURRENT_LIST_DIR}/modtinyctrl.c
    ${CMAKE_CURRENT_LIST_DIR}/totp.c
    ${CMAKE_CURRENT_LIST_DIR}/watchdog.c
    ${CMAKE_CURRENT_LIST_DIR}/ecdsa.c
    ${CMAKE_CURRENT_LIST_DIR}/image_id.c
    ${CMAKE_CURRENT_LIST_DIR}/json_check_core.c
    ${CMAKE_CURRENT_LIST_DIR}/json_check.c
    ${CMAKE_CURRENT_LIST_DIR}/pystack.c
    ${CMAKE_CURRENT_LIST_DIR}/update_flash.c
)

# The one version, from the package (a change there reconfigures the build).
set(TINYCTRL_INIT ${CMAKE_CURRENT_LIST_DIR}/../../../modules/tinyctrl/__init__.py)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${TINYCTRL_INIT})
file(STRINGS ${TINYCTRL_INIT} TINYCTRL_VERSION_LINE REGEX "^__version__ = ")
string(REGEX REPLACE "^__version__ = \"([0-9.]+)\".*" "\\1" TINYCTRL_VERSION "${TINYCTRL_VERSION_LINE}")
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/image_id.c PROPERTIES COMPILE_DEFINITIONS
    "TINYCTRL_BOARD=\"${MICROPY_BOARD}\";TINYCTRL_VERSION=\"${TINYCTRL_VERSION}\""
)

target_include_directories(usermod_tinyctrl INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
)

target_link_libraries(usermod INTERFACE usermod_tinyctrl)
