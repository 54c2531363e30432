# SPDX-License-Identifier: MIT
import binascii

from check import raises
from tinyctrl import net

DER = bytes(range(48)) * 3


def pem(der):
    body = binascii.b2a_base64(der).strip()
    return net.PEM_BEGIN + b"\n" + body + b"\n" + net.PEM_END + b"\n"


def test_pem_certificate_becomes_der():
    assert net.der_certificate(pem(DER)) == DER
    assert net.der_certificate(b"comment\n" + pem(DER) + pem(b"second")) == DER  # the first one


def test_der_certificate_is_kept():
    assert net.der_certificate(DER) == DER


def test_broken_pem_is_a_clear_error():
    e = raises(OSError, net.der_certificate, net.PEM_BEGIN + b"\nAAAA\n")
    assert "no END line" in str(e)
