# SPDX-License-Identifier: MIT
"""The board's strict JSON check (ports/rp2/cmodule/json_check_core.c), built with the host's
cc, against tinyctrl.protocol's reader, which it stands in for on the board: the same verdict
on every text, the same MFA code text, and json.loads then gives what the reader gives."""

import ctypes
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from test_protocol import MALFORMED
from tinyctrl import protocol

CORE = Path(__file__).resolve().parents[2] / "ports" / "rp2" / "cmodule"
CC = shutil.which(os.environ.get("CC", "cc"))
KEY = "MFA"

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler")

TEXTS = [
    '{"GP16": 1}',
    ' {"a" : [1, -2.5e3, true, false, null, "x\\"\\u0041"], "b": {}} ',
    '{"GP16": 0, "GP17": "on", "MFA": 123456}',
    '{"MFA": 012345}',
    '{"MFA": "012345"}',
    '{"MFA": 0123, "MFA": 5}',
    '{"MFA": 5, "MFA": 00042}',
    '{"TS": 1700000000, "SIG": "' + "ab" * 32 + '", "GP16": 1}',
    '{"CMD": "stats"}',
    '{"x": "\\/\\b\\f\\n\\r\\t\\\\ é ☃"}',
    "0",
    '""',
    "-0",
    "1E+2",
    "-12.5e-3",
    "[[[[[[[[]]]]]]]]",
    "[]",
    "{}",
    '{"a": {"MFA": 0123}}',  # not top level: refused
    '{"M\\u0046A": 0123}',  # the name is matched as written: refused
    "[0123]",
    '{"MFA": -0123}',
    '{"MFA": 0123.5}',
    '{"MFA": 0123e1}',
    "[" * 9 + "]" * 9,
    '{"a": "\\u12G4"}',
    '{"a": "\\u12"}',
    '{"a": "tab\there"}',
    '{"a": "\\\x00"}',
    '{"a": 1} x',
    "",
    "   ",
    '"unterminated',
    "[1, 2",
]

CORPUS = TEXTS + list(MALFORMED)
ALPHABET = '{}[]":,.-+eE0123456789 \t\n\\u/abfnrtx' + "GPMFA\x00\x1fé"


@pytest.fixture(scope="module")
def check(tmp_path_factory):
    lib = tmp_path_factory.mktemp("json_check") / "libjson_check.so"
    subprocess.run(
        [CC, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o"]
        + [str(lib), str(CORE / "json_check_core.c")],
        check=True,
    )
    so = ctypes.CDLL(str(lib))

    class Result(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("at", "code_start", "code_end")]

    so.json_check.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.POINTER(Result),
    ]
    so.json_check.restype = ctypes.c_int

    def run(text):
        data, key, r = text.encode(), KEY.encode(), Result()
        status = so.json_check(data, len(data), key, len(key), protocol.MAX_DEPTH, r)
        code = data[r.code_start : r.code_end].decode() if status == 0 and r.code_end else None
        return status, code

    return run


class CodeNoting(protocol._Reader):
    """The reader, noting what the last top-level member named KEY held if it was an MFA code
    written with leading zeros (a number the reader returns as its text)."""

    code = None
    leading_zeros = False  # any number written so; CPython's json.loads refuses them

    def number(self, code=False):
        v = super().number(code)
        self.leading_zeros |= isinstance(v, str)
        return v

    def value(self, depth, code=False):
        v = super().value(depth, code)
        if code:
            self.code = v if isinstance(v, str) and self.s[self.i - 1] != '"' else None
        return v


def reader(text):
    """(status, code text, value or None) as the reader sees `text`; no value if it holds a
    number with leading zeros, which CPython's json.loads refuses."""
    r = CodeNoting(text, KEY)
    try:
        v = r.value(0)
        r.ws()
        if r.i != len(text):
            r.fail()
    except protocol.TooDeep:
        return 2, None, None
    except ValueError:
        return 1, None, None
    return 0, r.code, None if r.leading_zeros else v


def mutations(seed, n):
    rng = random.Random(seed)
    for _ in range(n):
        text = list(rng.choice(CORPUS))
        for _ in range(rng.randint(1, 3)):
            op, at = rng.randrange(3), rng.randint(0, len(text))
            if op == 0:
                text.insert(at, rng.choice(ALPHABET))
            elif text and op == 1:
                del text[min(at, len(text) - 1)]
            elif text:
                text[min(at, len(text) - 1)] = rng.choice(ALPHABET)
        yield "".join(text)


def test_the_check_gives_the_readers_verdict(check):
    assert protocol.json_check is None  # CPython: the reader itself
    texts = CORPUS + list(mutations(1, 20000))
    verdicts = {0: 0, 1: 0, 2: 0}
    for text in texts:
        status, code, value = reader(text)
        assert check(text) == (status, code), repr(text)
        verdicts[status] += 1
        if status == 0 and value is not None:
            assert json.loads(text) == value, repr(text)  # as the board's json.loads does
    assert min(verdicts.values()) > 20, verdicts  # each verdict well covered


def test_the_check_reports_where_the_text_goes_wrong(check, tmp_path):
    assert check('{"GP16": 1}') == (0, None)
    assert check('{"MFA": 012345}') == (0, "012345")
    assert check("[" * 9 + "]" * 9)[0] == 2
    assert check('{"GP16" 1}')[0] == 1
