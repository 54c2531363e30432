# SPDX-License-Identifier: MIT
"""The panel's TOTP and signing modules (panel/src) under Node's WebCrypto, against RFC 6238's
test vectors and tools/sign.py; no browser needed. The browser tests (test_panel.py) show the
device accepts what the page sends."""

import base64
import json
import pathlib
import shutil
import subprocess

import pytest
from sign import sign
from oracle import totp_now
from simharness import KEY_A

SRC = pathlib.Path(__file__).resolve().parents[2] / "panel" / "src"
RFC6238_KEY = base64.b32encode(b"12345678901234567890").decode()  # RFC 6238 appendix B, SHA-1
SCRIPT = """
import { totp, parseKey } from "%s/totp.js";
import { signedRequest } from "%s/sign.js";
const args = JSON.parse(process.argv[1]);
const out = {codes: [], keys: [], errors: []};
for (const [key, t] of args.totp) out.codes.push(await totp(key, t));
for (const text of args.keys) {
  try { out.keys.push(parseKey(text)); } catch (e) { out.errors.push(e.message); }
}
out.signed = await signedRequest(...args.sign);
console.log(JSON.stringify(out));
"""


def run_node(args):
    if not shutil.which("node"):
        pytest.skip("node not installed (requirements-apt.txt)")
    script = SCRIPT % (SRC.as_uri(), SRC.as_uri())
    proc = subprocess.run(
        ["node", "--input-type=module", "-e", script, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_totp_signature_and_key_parsing_match_the_references():
    times = [59, 1111111109, 1111111111, 1234567890, 2000000000, 20000000000]
    out = run_node(
        {
            "totp": [[RFC6238_KEY, t] for t in times] + [[KEY_A, 1767225600]],
            "keys": [
                "otpauth://totp/x:GP18?secret=%s&issuer=x" % KEY_A.lower(),
                " ".join(KEY_A[i : i + 4] for i in range(0, 32, 4)),
                "otpauth://totp/x?secret=%s&digits=8" % KEY_A,
                "ABC",
                "not base32!",
            ],
            "sign": [
                "scheduler-key-0123456789",
                "home/pico",
                {"20": 1, "16": 0},
                "GP",
                1767225600,
            ],
        }
    )
    # RFC 6238 appendix B's SHA-1 codes, last 6 digits (the device's length).
    rfc = [94287082, 7081804, 14050471, 89005924, 69279037, 65353130]
    assert [c["code"] for c in out["codes"][:6]] == [v % 1000000 for v in rfc]
    assert [c["counter"] for c in out["codes"][:6]] == [t // 30 for t in times]
    assert out["codes"][6]["code"] == totp_now(KEY_A, at=1767225600)
    assert out["keys"] == [KEY_A, KEY_A]
    assert out["errors"] == [
        "the device checks 6-digit codes",
        "the key is shorter than 16 Base32 characters",
        "the key is not Base32 (letters A-Z and digits 2-7)",
    ]
    expected = sign("scheduler-key-0123456789", "home/pico", {20: 1, 16: 0}, ts=1767225600)
    assert out["signed"] == expected
