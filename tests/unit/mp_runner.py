# SPDX-License-Identifier: MIT
# Runs the pure-logic unit tests under MicroPython, which has no pytest:
#   micropython mp_runner.py test_totp test_config ...
# Prints one line per failure and closes with "N passed, N failed".
import sys


def run(names):
    passed = failed = 0
    for name in names:
        module = __import__(name)
        for attr in sorted(dir(module)):
            fn = getattr(module, attr)
            if not attr.startswith("test_") or not callable(fn):
                continue
            try:
                fn()
                passed += 1
            except Exception as e:
                failed += 1
                print("FAIL %s.%s: %s %s" % (name, attr, type(e).__name__, e))
    print("micropython: %d passed, %d failed" % (passed, failed))
    return failed


sys.exit(1 if run(sys.argv[1:]) else 0)
