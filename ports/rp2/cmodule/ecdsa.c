// SPDX-License-Identifier: MIT
// _tinyctrl ECDSA P-256 verification over the mbedtls the firmware already links for TLS
// (MBEDTLS_ECDSA_C, MBEDTLS_ECP_DP_SECP256R1_ENABLED): firmware update manifests are signed
// with the owner's update key, and the board holds only its public key.

#include "py/runtime.h"

#include "mbedtls/bignum.h"
#include "mbedtls/ecdsa.h"
#include "mbedtls/ecp.h"

#include "modtinyctrl.h"

#define P256_BYTES 32

// The buffer of `arg`, which must be `len` bytes long.
static const uint8_t *get_exactly(mp_obj_t arg, size_t len, const char *what) {
    mp_buffer_info_t buf;
    mp_get_buffer_raise(arg, &buf, MP_BUFFER_READ);
    if (buf.len != len) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s must be %d bytes"), what,
            (int)len);
    }
    return buf.buf;
}

// ecdsa_verify(pubkey, digest, sig) -> bool
//   pubkey: 65 bytes, the uncompressed SEC1 point 04 | X | Y (ValueError if not on P-256)
//   digest: 32 bytes, the SHA-256 of what was signed
//   sig:    64 bytes, r | s big-endian (not DER: fixed size, nothing to parse)
// True only for a valid signature; MemoryError if mbedtls cannot get its working memory, so
// that a full heap never reads as a forged signature, nor one as valid.
static mp_obj_t tinyctrl_ecdsa_verify(mp_obj_t pubkey_in, mp_obj_t digest_in, mp_obj_t sig_in) {
    const uint8_t *pubkey = get_exactly(pubkey_in, 1 + 2 * P256_BYTES, "pubkey");
    const uint8_t *digest = get_exactly(digest_in, P256_BYTES, "digest");
    const uint8_t *sig = get_exactly(sig_in, 2 * P256_BYTES, "sig");

    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_mpi r, s;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);

    int ret = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1);
    bool bad_key = false;
    if (ret == 0) {
        bad_key = pubkey[0] != 0x04
            || mbedtls_ecp_point_read_binary(&grp, &q, pubkey, 1 + 2 * P256_BYTES) != 0
            || mbedtls_ecp_check_pubkey(&grp, &q) != 0;
    }
    if (ret == 0 && !bad_key) {
        ret = mbedtls_mpi_read_binary(&r, sig, P256_BYTES);
    }
    if (ret == 0 && !bad_key) {
        ret = mbedtls_mpi_read_binary(&s, sig + P256_BYTES, P256_BYTES);
    }
    int verified = -1;
    if (ret == 0 && !bad_key) {
        verified = mbedtls_ecdsa_verify(&grp, digest, P256_BYTES, &q, &r, &s);
    }

    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&r);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);

    if (ret == MBEDTLS_ERR_MPI_ALLOC_FAILED || verified == MBEDTLS_ERR_MPI_ALLOC_FAILED) {
        mp_raise_type(&mp_type_MemoryError);
    }
    if (ret != 0) {
        mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("ecdsa: mbedtls error"));
    }
    if (bad_key) {
        mp_raise_ValueError(MP_ERROR_TEXT("pubkey is not a P-256 public key"));
    }
    return mp_obj_new_bool(verified == 0);
}
MP_DEFINE_CONST_FUN_OBJ_3(tinyctrl_ecdsa_verify_obj, tinyctrl_ecdsa_verify);
