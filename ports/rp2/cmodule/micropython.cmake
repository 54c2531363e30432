# _tinyctrl user C module: TOTP primitives and the long-timeout watchdog.
add_library(usermod_tinyctrl INTERFACE)

target_sources(usermod_tinyctrl INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/totp_core.c
    ${CMAKE_CURRENT_LIST_DIR}/modtinyctrl.c
)

target_include_directories(usermod_tinyctrl INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
)

target_link_libraries(usermod INTERFACE usermod_tinyctrl)
