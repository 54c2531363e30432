// SPDX-License-Identifier: MIT
// SHA-1, HMAC-SHA1, HOTP and TOTP window matching (RFC 3174, 2104, 4226, 6238).
// Plain C99 without MicroPython includes, so the host test suite can compile it.
#ifndef TINYCTRL_TOTP_CORE_H
#define TINYCTRL_TOTP_CORE_H

#include <stddef.h>
#include <stdint.h>

#define TOTP_SHA1_DIGEST_SIZE (20)
#define TOTP_MAX_DIGITS (9)

void totp_hmac_sha1(const uint8_t *key, size_t key_len,
    const uint8_t *msg, size_t msg_len, uint8_t out[TOTP_SHA1_DIGEST_SIZE]);

// HOTP value of counter, truncated to digits (1..TOTP_MAX_DIGITS) decimal digits.
uint32_t totp_hotp(const uint8_t *key, size_t key_len, uint64_t counter, unsigned digits);

// Search counters counter-back .. counter+forward (never below 0), oldest
// first, for code. Returns the first matching counter, or -1.
// counter + forward must not overflow.
int64_t totp_match(const uint8_t *key, size_t key_len, uint32_t code,
    uint64_t counter, unsigned back, unsigned forward, unsigned digits);

#endif // TINYCTRL_TOTP_CORE_H
