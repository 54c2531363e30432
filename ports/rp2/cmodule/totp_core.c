#include <string.h>

#include "totp_core.h"

#define SHA1_BLOCK_SIZE (64)

typedef struct {
    uint32_t state[5];
    uint64_t length; // bytes hashed so far
    uint8_t block[SHA1_BLOCK_SIZE];
    size_t used; // bytes waiting in block
} sha1_ctx_t;

static uint32_t rol32(uint32_t x, unsigned n) {
    return (x << n) | (x >> (32 - n));
}

static void sha1_compress(sha1_ctx_t *ctx, const uint8_t *p) {
    uint32_t w[16];
    for (int i = 0; i < 16; ++i) {
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16
            | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    }
    uint32_t a = ctx->state[0], b = ctx->state[1], c = ctx->state[2];
    uint32_t d = ctx->state[3], e = ctx->state[4];
    for (int i = 0; i < 80; ++i) {
        // The message schedule is kept as a 16-word ring to save stack.
        if (i >= 16) {
            uint32_t x = w[(i + 13) & 15] ^ w[(i + 8) & 15] ^ w[(i + 2) & 15] ^ w[i & 15];
            w[i & 15] = rol32(x, 1);
        }
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol32(a, 5) + f + e + k + w[i & 15];
        e = d;
        d = c;
        c = rol32(b, 30);
        b = a;
        a = t;
    }
    ctx->state[0] += a;
    ctx->state[1] += b;
    ctx->state[2] += c;
    ctx->state[3] += d;
    ctx->state[4] += e;
}

static void sha1_init(sha1_ctx_t *ctx) {
    static const uint32_t iv[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };
    memcpy(ctx->state, iv, sizeof(iv));
    ctx->length = 0;
    ctx->used = 0;
}

static void sha1_update(sha1_ctx_t *ctx, const uint8_t *data, size_t len) {
    ctx->length += len;
    while (len > 0) {
        size_t n = SHA1_BLOCK_SIZE - ctx->used;
        if (n > len) {
            n = len;
        }
        memcpy(ctx->block + ctx->used, data, n);
        ctx->used += n;
        data += n;
        len -= n;
        if (ctx->used == SHA1_BLOCK_SIZE) {
            sha1_compress(ctx, ctx->block);
            ctx->used = 0;
        }
    }
}

static void sha1_final(sha1_ctx_t *ctx, uint8_t out[TOTP_SHA1_DIGEST_SIZE]) {
    uint64_t bits = ctx->length * 8;
    uint8_t pad = 0x80;
    sha1_update(ctx, &pad, 1);
    pad = 0;
    while (ctx->used != SHA1_BLOCK_SIZE - 8) {
        sha1_update(ctx, &pad, 1);
    }
    uint8_t len_be[8];
    for (int i = 0; i < 8; ++i) {
        len_be[i] = (uint8_t)(bits >> (56 - 8 * i));
    }
    sha1_update(ctx, len_be, sizeof(len_be));
    for (int i = 0; i < 5; ++i) {
        out[4 * i] = (uint8_t)(ctx->state[i] >> 24);
        out[4 * i + 1] = (uint8_t)(ctx->state[i] >> 16);
        out[4 * i + 2] = (uint8_t)(ctx->state[i] >> 8);
        out[4 * i + 3] = (uint8_t)ctx->state[i];
    }
}

void totp_hmac_sha1(const uint8_t *key, size_t key_len,
    const uint8_t *msg, size_t msg_len, uint8_t out[TOTP_SHA1_DIGEST_SIZE]) {
    uint8_t pad[SHA1_BLOCK_SIZE] = { 0 };
    sha1_ctx_t ctx;
    // Keys longer than a block are replaced by their hash (RFC 2104).
    if (key_len > SHA1_BLOCK_SIZE) {
        sha1_init(&ctx);
        sha1_update(&ctx, key, key_len);
        sha1_final(&ctx, pad);
    } else {
        memcpy(pad, key, key_len);
    }

    uint8_t inner[TOTP_SHA1_DIGEST_SIZE];
    for (size_t i = 0; i < SHA1_BLOCK_SIZE; ++i) {
        pad[i] ^= 0x36;
    }
    sha1_init(&ctx);
    sha1_update(&ctx, pad, SHA1_BLOCK_SIZE);
    sha1_update(&ctx, msg, msg_len);
    sha1_final(&ctx, inner);

    for (size_t i = 0; i < SHA1_BLOCK_SIZE; ++i) {
        pad[i] ^= 0x36 ^ 0x5c;
    }
    sha1_init(&ctx);
    sha1_update(&ctx, pad, SHA1_BLOCK_SIZE);
    sha1_update(&ctx, inner, sizeof(inner));
    sha1_final(&ctx, out);
}

uint32_t totp_hotp(const uint8_t *key, size_t key_len, uint64_t counter, unsigned digits) {
    uint8_t msg[8];
    for (int i = 0; i < 8; ++i) {
        msg[i] = (uint8_t)(counter >> (56 - 8 * i));
    }
    uint8_t mac[TOTP_SHA1_DIGEST_SIZE];
    totp_hmac_sha1(key, key_len, msg, sizeof(msg), mac);

    // Dynamic truncation (RFC 4226 section 5.3).
    unsigned offset = mac[TOTP_SHA1_DIGEST_SIZE - 1] & 0x0f;
    uint32_t value = (uint32_t)(mac[offset] & 0x7f) << 24 | (uint32_t)mac[offset + 1] << 16
        | (uint32_t)mac[offset + 2] << 8 | mac[offset + 3];
    uint32_t modulus = 1;
    while (digits-- > 0) {
        modulus *= 10;
    }
    return value % modulus;
}

int64_t totp_match(const uint8_t *key, size_t key_len, uint32_t code,
    uint64_t counter, unsigned back, unsigned forward, unsigned digits) {
    uint64_t first = counter > back ? counter - back : 0;
    for (uint64_t c = first; c <= counter + forward; ++c) {
        if (totp_hotp(key, key_len, c, digits) == code) {
            return (int64_t)c;
        }
    }
    return -1;
}
