// SPDX-License-Identifier: MIT
#include <string.h>

#include "totp_core.h"

#define SHA1_BLOCK_SIZE (64)
#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

// SHA-1 works on big-endian 32-bit words; the state and blocks stay in words
// throughout, bytes appear only at the API.
static uint32_t load_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void load_block(uint32_t block[16], const uint8_t *p) {
    for (int i = 0; i < 16; ++i) {
        block[i] = load_be32(p + 4 * i);
    }
}

static void store_digest(uint8_t out[TOTP_SHA1_DIGEST_SIZE], const uint32_t h[5]) {
    for (int i = 0; i < 5; ++i) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

// One round, with the five variables renamed by the caller instead of moved.
#define ROUND(a, b, c, d, e, f, k, w) \
    do { \
        e += ROL(a, 5) + (f) + (k) + (w); \
        b = ROL(b, 30); \
    } while (0)
#define F_CHOOSE(b, c, d) ((d) ^ ((b) & ((c) ^ (d))))
#define F_PARITY(b, c, d) ((b) ^ (c) ^ (d))
#define F_MAJORITY(b, c, d) (((b) & (c)) | ((d) & ((b) | (c))))
#define FIVE_ROUNDS(F, k, i) \
    do { \
        ROUND(a, b, c, d, e, F(b, c, d), k, w[i]); \
        ROUND(e, a, b, c, d, F(a, b, c), k, w[i + 1]); \
        ROUND(d, e, a, b, c, F(e, a, b), k, w[i + 2]); \
        ROUND(c, d, e, a, b, F(d, e, a), k, w[i + 3]); \
        ROUND(b, c, d, e, a, F(c, d, e), k, w[i + 4]); \
    } while (0)

// The compression function (RFC 3174 method 1, unrolled by five): the whole
// 80-word schedule first, then straight-line rounds. Both choices matter on a
// Cortex-M0+, which has few fast registers and no barrel-shifted operands.
static void sha1_compress(uint32_t h[5], const uint32_t block[16]) {
    uint32_t w[80];
    memcpy(w, block, 16 * sizeof(uint32_t));
    for (int i = 16; i < 80; ++i) {
        uint32_t x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
        w[i] = ROL(x, 1);
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 20; i += 5) {
        FIVE_ROUNDS(F_CHOOSE, 0x5a827999, i);
    }
    for (int i = 20; i < 40; i += 5) {
        FIVE_ROUNDS(F_PARITY, 0x6ed9eba1, i);
    }
    for (int i = 40; i < 60; i += 5) {
        FIVE_ROUNDS(F_MAJORITY, 0x8f1bbcdc, i);
    }
    for (int i = 60; i < 80; i += 5) {
        FIVE_ROUNDS(F_PARITY, 0xca62c1d6, i);
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static const uint32_t sha1_iv[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };

// Hash `len` bytes into `h`, which has already absorbed `done` bytes (whole
// blocks), and add the final padding and length.
static void sha1_finish(uint32_t h[5], const uint8_t *data, size_t len, uint64_t done) {
    uint64_t bits = (done + len) * 8;
    uint32_t block[16];
    for (; len >= SHA1_BLOCK_SIZE; len -= SHA1_BLOCK_SIZE, data += SHA1_BLOCK_SIZE) {
        load_block(block, data);
        sha1_compress(h, block);
    }
    uint8_t tail[SHA1_BLOCK_SIZE] = { 0 };
    memcpy(tail, data, len);
    tail[len] = 0x80;
    if (len >= SHA1_BLOCK_SIZE - 8) { // no room for the length: one more block
        load_block(block, tail);
        sha1_compress(h, block);
        memset(tail, 0, sizeof(tail));
    }
    load_block(block, tail);
    block[14] = (uint32_t)(bits >> 32);
    block[15] = (uint32_t)bits;
    sha1_compress(h, block);
}

// HMAC's two keyed states (RFC 2104): SHA-1 after the inner and the outer
// padded key. Computed once per key, they save two of the four compressions
// of every code checked against it.
typedef struct {
    uint32_t inner[5];
    uint32_t outer[5];
} hmac_sha1_key_t;

static void hmac_sha1_key(hmac_sha1_key_t *k, const uint8_t *key, size_t key_len) {
    uint8_t pad[SHA1_BLOCK_SIZE] = { 0 };
    if (key_len > SHA1_BLOCK_SIZE) { // long keys are replaced by their hash
        uint32_t h[5];
        memcpy(h, sha1_iv, sizeof(h));
        sha1_finish(h, key, key_len, 0);
        store_digest(pad, h);
    } else {
        memcpy(pad, key, key_len);
    }
    uint32_t block[16];
    load_block(block, pad);
    for (int i = 0; i < 16; ++i) {
        block[i] ^= 0x36363636;
    }
    memcpy(k->inner, sha1_iv, sizeof(k->inner));
    sha1_compress(k->inner, block);
    for (int i = 0; i < 16; ++i) {
        block[i] ^= 0x36363636 ^ 0x5c5c5c5c;
    }
    memcpy(k->outer, sha1_iv, sizeof(k->outer));
    sha1_compress(k->outer, block);
}

void totp_hmac_sha1(const uint8_t *key, size_t key_len,
    const uint8_t *msg, size_t msg_len, uint8_t out[TOTP_SHA1_DIGEST_SIZE]) {
    hmac_sha1_key_t k;
    hmac_sha1_key(&k, key, key_len);
    uint8_t inner[TOTP_SHA1_DIGEST_SIZE];
    sha1_finish(k.inner, msg, msg_len, SHA1_BLOCK_SIZE);
    store_digest(inner, k.inner);
    sha1_finish(k.outer, inner, sizeof(inner), SHA1_BLOCK_SIZE);
    store_digest(out, k.outer);
}

// HOTP of one counter: exactly two compressions, as the 8-byte counter and the
// 20-byte inner digest each fit one padded block.
static uint32_t hotp_keyed(const hmac_sha1_key_t *k, uint64_t counter, uint32_t modulus) {
    uint32_t block[16] = { 0 };
    uint32_t h[5];
    block[0] = (uint32_t)(counter >> 32);
    block[1] = (uint32_t)counter;
    block[2] = 0x80000000;
    block[15] = (SHA1_BLOCK_SIZE + 8) * 8;
    memcpy(h, k->inner, sizeof(h));
    sha1_compress(h, block);

    memcpy(block, h, sizeof(h));
    block[5] = 0x80000000;
    block[15] = (SHA1_BLOCK_SIZE + TOTP_SHA1_DIGEST_SIZE) * 8;
    memcpy(h, k->outer, sizeof(h));
    sha1_compress(h, block);

    // Dynamic truncation (RFC 4226 section 5.3).
    uint8_t mac[TOTP_SHA1_DIGEST_SIZE];
    store_digest(mac, h);
    unsigned offset = mac[TOTP_SHA1_DIGEST_SIZE - 1] & 0x0f;
    return (load_be32(mac + offset) & 0x7fffffff) % modulus;
}

static uint32_t modulus_of(unsigned digits) {
    uint32_t modulus = 1;
    while (digits-- > 0) {
        modulus *= 10;
    }
    return modulus;
}

uint32_t totp_hotp(const uint8_t *key, size_t key_len, uint64_t counter, unsigned digits) {
    hmac_sha1_key_t k;
    hmac_sha1_key(&k, key, key_len);
    return hotp_keyed(&k, counter, modulus_of(digits));
}

int64_t totp_match(const uint8_t *key, size_t key_len, uint32_t code,
    uint64_t counter, unsigned back, unsigned forward, unsigned digits) {
    hmac_sha1_key_t k;
    hmac_sha1_key(&k, key, key_len);
    uint32_t modulus = modulus_of(digits);
    uint64_t first = counter > back ? counter - back : 0;
    for (uint64_t c = first; c <= counter + forward; ++c) {
        if (hotp_keyed(&k, c, modulus) == code) {
            return (int64_t)c;
        }
    }
    return -1;
}
