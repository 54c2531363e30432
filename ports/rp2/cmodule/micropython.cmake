# SPDX-License-Identifier: MIT
# _tinyctrl user C module, one feature per file: TOTP primitives (totp.c over
# totp_core.c) and the long-timeout watchdog (watchdog.c); modtinyctrl.c is the table.
add_library(usermod_tinyctrl INTERFACE)

target_sources(usermod_tinyctrl INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/totp_core.c
    ${CMAKE_CURRENT_LIST_DIR}/modtinyctrl.c
    ${CMAKE_CURRENT_LIST_DIR}/totp.c
    ${CMAKE_CURRENT_LIST_DIR}/watchdog.c
)

target_include_directories(usermod_tinyctrl INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
)

target_link_libraries(usermod INTERFACE usermod_tinyctrl)
