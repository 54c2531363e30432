# SPDX-License-Identifier: MIT
"""Throwaway TLS certificates for the test brokers, made with openssl: CAs, and server
certificates they sign for the name (or address) a client checks."""

import os
import subprocess

# EC P-256 is quick to make and to check; RSA 2048 is what most brokers' certificates are, and
# what the emulated board's handshake figures are quoted for.
KEYS = {
    "ec": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
    "rsa": ["-newkey", "rsa:2048"],
}
DAYS = "30"


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(folder, name, key="ec"):
    """folder/name.pem and name.key: a self-signed CA, "tinyctrl test NAME"."""
    openssl(
        "req",
        "-x509",
        *KEYS[key],
        "-nodes",
        "-days",
        DAYS,
        "-subj",
        "/CN=tinyctrl test %s" % name,
        "-keyout",
        os.path.join(folder, name + ".key"),
        "-out",
        os.path.join(folder, name + ".pem"),
    )


def make_server_cert(folder, name, ca, host, key="ec"):
    """folder/name.pem and name.key: a broker certificate for `host` (CN and subjectAltName; an
    IP address also gets localhost), signed by the CA folder/ca.pem."""
    key_path, csr, pem = (os.path.join(folder, name + ext) for ext in (".key", ".csr", ".pem"))
    ext = os.path.join(folder, name + ".ext")
    with open(ext, "w") as f:
        alt = "IP:%s,DNS:localhost" % host if host[0].isdigit() else "DNS:%s" % host
        f.write(
            "subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" % alt
        )
    openssl(
        "req", *KEYS[key], "-nodes", "-subj", "/CN=%s" % host, "-keyout", key_path, "-out", csr
    )
    openssl(
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        os.path.join(folder, ca + ".pem"),
        "-CAkey",
        os.path.join(folder, ca + ".key"),
        "-set_serial",
        str(int.from_bytes(os.urandom(8), "big")),
        "-days",
        DAYS,
        "-extfile",
        ext,
        "-out",
        pem,
    )
