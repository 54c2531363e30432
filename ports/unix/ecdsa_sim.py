# SPDX-License-Identifier: MIT
# ECDSA P-256 verification in pure Python, for the SIMULATOR ONLY: the unix-port MicroPython
# the tests run has no tinyctrl C module. The board verifies with _tinyctrl.ecdsa_verify
# (ports/rp2/cmodule/ecdsa.c, over the firmware's mbedtls); this file is never frozen into
# the firmware. It checks signatures only (no secrets, so no constant time), on public data.
# The curve and the algorithm: SEC 2 section 2.4.2 (secp256r1) and SEC 1 section 4.1.4.

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
    1,
)
INFINITY = (1, 1, 0)  # Jacobian coordinates (X, Y, Z): x = X/Z^2, y = Y/Z^3


def _double(pt):
    x, y, z = pt
    if not y or not z:
        return INFINITY
    delta = z * z % P
    gamma = y * y % P
    beta = x * gamma % P
    alpha = 3 * (x - delta) * (x + delta) % P  # a = -3
    x3 = (alpha * alpha - 8 * beta) % P
    z3 = ((y + z) * (y + z) - gamma - delta) % P
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % P
    return (x3, y3, z3)


def _add(p1, p2):
    if not p1[2]:
        return p2
    if not p2[2]:
        return p1
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1z1, z2z2 = z1 * z1 % P, z2 * z2 % P
    u1, u2 = x1 * z2z2 % P, x2 * z1z1 % P
    s1, s2 = y1 * z2 * z2z2 % P, y2 * z1 * z1z1 % P
    if u1 == u2:
        return _double(p1) if s1 == s2 else INFINITY
    h, r = (u2 - u1) % P, (s2 - s1) % P
    hh = h * h % P
    hhh = h * hh % P
    x3 = (r * r - hhh - 2 * u1 * hh) % P
    y3 = (r * (u1 * hh - x3) - s1 * hhh) % P
    return (x3, y3, h * z1 * z2 % P)


def _point(pubkey):
    """(x, y, 1) of a 65-byte uncompressed key, or ValueError if it is not on the curve."""
    if len(pubkey) != 65 or pubkey[0] != 4:
        raise ValueError("pubkey is not a P-256 public key")
    x, y = int.from_bytes(pubkey[1:33], "big"), int.from_bytes(pubkey[33:], "big")
    if x >= P or y >= P or (y * y - x * x * x + 3 * x - B) % P:
        raise ValueError("pubkey is not a P-256 public key")
    return (x, y, 1)


def verify(pubkey, digest, sig):
    """ecdsa_verify(pubkey, digest, sig) -> bool, as _tinyctrl's: 65-byte key, 32-byte
    SHA-256 digest, 64-byte r | s."""
    q = _point(pubkey)
    if len(digest) != 32 or len(sig) != 64:
        raise ValueError("digest must be 32 bytes and sig 64")
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    if not (0 < r < N and 0 < s < N):
        return False
    w = pow(s, N - 2, N)
    e = int.from_bytes(digest, "big")
    u1, u2 = e * w % N, r * w % N
    both = _add(G, q)
    acc = INFINITY
    for bit in range(255, -1, -1):  # u1*G + u2*Q together (Shamir's trick)
        acc = _double(acc)
        pick = (u1 >> bit & 1) | (u2 >> bit & 1) << 1
        if pick:
            acc = _add(acc, (G, q, both)[pick - 1])
    x, _, z = acc
    if not z:
        return False
    zz = z * z % P
    return x * pow(zz, P - 2, P) % P % N == r
