// SPDX-License-Identifier: MIT
// A strict JSON (RFC 8259) check of one request, no MicroPython dependencies: the board's
// json.loads accepts malformed text such as {"GP16" 1}, and a malformed request must never
// move a pin. It accepts exactly what tinyctrl.protocol's reader accepts.
#ifndef TINYCTRL_JSON_CHECK_CORE_H
#define TINYCTRL_JSON_CHECK_CORE_H

#include <stddef.h>

enum { JSON_OK = 0, JSON_INVALID = 1, JSON_TOO_DEEP = 2 };

typedef struct {
    size_t at;          // JSON_INVALID: where the text stops being JSON
    size_t code_start;  // a top-level `code_key` member's number written with leading
    size_t code_end;    // zeros (an MFA code): its digits, else both 0
} json_check_result_t;

// Checks `s` (`n` bytes of UTF-8) is one JSON value nested at most `max_depth` deep.
// `code_key` (`key_len` bytes; NULL for none) names the one top-level member whose value may
// be digits with leading zeros, as IoT MQTT Panel sends {"MFA": 012345}.
int json_check(const char *s, size_t n, const char *code_key, size_t key_len, int max_depth,
    json_check_result_t *result);

#endif // TINYCTRL_JSON_CHECK_CORE_H
