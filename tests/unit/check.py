# Assertion helpers that work the same under CPython and MicroPython (no pytest there).


def raises(exc_type, fn, *args, **kwargs):
    """Call fn; return the exc_type it raised, or fail."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    raise AssertionError("%s did not raise %s" % (fn, exc_type.__name__))


def hexlify(data):
    return "".join("%02x" % b for b in data)
