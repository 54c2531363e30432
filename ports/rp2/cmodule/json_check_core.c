// SPDX-License-Identifier: MIT
// The strict JSON check (json_check_core.h): a recursive descent over the grammar of
// RFC 8259 sections 2-7, in the same steps as tinyctrl.protocol's reader.

#include <string.h>

#include "json_check_core.h"

typedef struct {
    const char *s;
    size_t n, i;
    const char *code_key;
    size_t key_len;
    int max_depth;
    json_check_result_t *result;
} reader_t;

static int fail(reader_t *r) {
    r->result->at = r->i;
    return JSON_INVALID;
}

static int peek(const reader_t *r) {
    return r->i < r->n ? (unsigned char)r->s[r->i] : -1;
}

static void ws(reader_t *r) {
    while (r->i < r->n) {
        char c = r->s[r->i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            break;
        }
        r->i++;
    }
}

static int is_hex(int c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// A string from its opening quote; *key_is_code tells whether it spells code_key.
static int string(reader_t *r, int *key_is_code) {
    size_t start = ++r->i;
    int escaped = 0;
    while (r->i < r->n) {
        unsigned char c = r->s[r->i];
        if (c == '"') {
            if (key_is_code) {
                *key_is_code = !escaped && r->code_key && r->i - start == r->key_len
                    && memcmp(r->s + start, r->code_key, r->key_len) == 0;
            }
            r->i++;
            return JSON_OK;
        }
        if (c == '\\') {
            escaped = 1;
            int e = r->i + 1 < r->n ? r->s[r->i + 1] : -1;
            if (e == 'u') {
                for (size_t k = 2; k < 6; k++) {
                    if (r->i + k >= r->n || !is_hex((unsigned char)r->s[r->i + k])) {
                        return fail(r);
                    }
                }
                r->i += 6;
                continue;
            }
            if (e <= 0 || !strchr("\"\\/bfnrt", e)) {
                return fail(r);
            }
            r->i += 2;
            continue;
        }
        if (c < ' ') {
            return fail(r);
        }
        r->i++;
    }
    return fail(r);
}

static int digits(reader_t *r) {
    size_t first = r->i;
    while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9') {
        r->i++;
    }
    return r->i == first ? fail(r) : JSON_OK;
}

static int number(reader_t *r, int code) {
    size_t start = r->i, first = start + (peek(r) == '-');
    r->i = first;
    if (digits(r)) {
        return JSON_INVALID;
    }
    if (r->s[first] == '0' && r->i - first > 1) {  // no leading zeros but an MFA code's
        int next = peek(r);
        if (code && first == start && next != '.' && next != 'e' && next != 'E') {
            r->result->code_start = start;
            r->result->code_end = r->i;
            return JSON_OK;
        }
        return fail(r);
    }
    if (peek(r) == '.') {
        r->i++;
        if (digits(r)) {
            return JSON_INVALID;
        }
    }
    if (peek(r) == 'e' || peek(r) == 'E') {
        r->i++;
        if (peek(r) == '+' || peek(r) == '-') {
            r->i++;
        }
        if (digits(r)) {
            return JSON_INVALID;
        }
    }
    return JSON_OK;
}

static int value(reader_t *r, int depth, int code);

static int container(reader_t *r, int depth) {
    char close = r->s[r->i] == '{' ? '}' : ']';
    r->i++;
    ws(r);
    if (peek(r) == close) {
        r->i++;
        return JSON_OK;
    }
    for (;;) {
        int err, code = 0;
        if (close == '}') {
            ws(r);
            if (peek(r) != '"') {
                return fail(r);
            }
            if ((err = string(r, &code))) {
                return err;
            }
            ws(r);
            if (peek(r) != ':') {
                return fail(r);
            }
            r->i++;
        }
        if (code && depth == 1) {  // the last member of that name is the one that counts
            r->result->code_start = r->result->code_end = 0;
        }
        if ((err = value(r, depth, code && depth == 1))) {
            return err;
        }
        ws(r);
        int next = peek(r);
        r->i++;
        if (next == close) {
            return JSON_OK;
        }
        if (next != ',') {
            return fail(r);
        }
    }
}

static int word(reader_t *r, const char *w) {
    size_t len = strlen(w);
    if (r->n - r->i >= len && memcmp(r->s + r->i, w, len) == 0) {
        r->i += len;
        return 1;
    }
    return 0;
}

static int value(reader_t *r, int depth, int code) {
    ws(r);
    int c = peek(r);
    if (c == '{' || c == '[') {
        if (depth >= r->max_depth) {
            return JSON_TOO_DEEP;
        }
        return container(r, depth + 1);
    }
    if (c == '"') {
        return string(r, NULL);
    }
    if (word(r, "true") || word(r, "false") || word(r, "null")) {
        return JSON_OK;
    }
    return number(r, code);
}

int json_check(const char *s, size_t n, const char *code_key, size_t key_len, int max_depth,
    json_check_result_t *result) {
    reader_t r = { s, n, 0, code_key, key_len, max_depth, result };
    result->at = result->code_start = result->code_end = 0;
    int err = value(&r, 0, 0);
    if (err) {
        return err;
    }
    ws(&r);
    return r.i == n ? JSON_OK : fail(&r);
}
