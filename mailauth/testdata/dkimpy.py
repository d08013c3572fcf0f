#!/usr/bin/python3
"""Sign or verify DKIM with dkimpy (Debian python3-dkim), for the tests.

  dkimpy.py sign ALGORITHM KEYFILE DOMAIN SELECTOR < message > signed-message
      ALGORITHM rsa-sha256 (KEYFILE: PEM RSA key) or ed25519-sha256
      (KEYFILE: base64 of the 32-byte Ed25519 seed, dkimpy's format);
      relaxed/relaxed.
  dkimpy.py verify PORT < message
      verifies every signature, keys from the DNS server on 127.0.0.1:PORT;
      prints "<pass|fail> d=<domain> s=<selector>" per signature and exits 0
      when all pass.
"""
import sys

# Importing loopbackdns would otherwise leave a __pycache__ in testdata.
sys.dont_write_bytecode = True

import dkim  # noqa: E402
from loopbackdns import txt_lookup  # noqa: E402


def sign(algorithm, keyfile, domain, selector):
    msg = sys.stdin.buffer.read()
    with open(keyfile, "rb") as f:
        key = f.read().strip()
    sig = dkim.sign(msg, selector.encode(), domain.encode(), key,
                    signature_algorithm=algorithm.encode(),
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    sys.stdout.buffer.write(sig + msg)


def verify(port):
    msg = sys.stdin.buffer.read()
    d = dkim.DKIM(msg)
    n = sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")
    ok = n > 0
    for i in range(n):
        detail = ""
        try:
            passed = d.verify(idx=i, dnsfunc=txt_lookup(port))
        except dkim.DKIMException as e:
            passed, detail = False, str(e)
        sig = d.signature_fields
        print("%s a=%s d=%s s=%s %s" % ("pass" if passed else "fail",
                                        sig.get(b"a", b"-").decode(),
                                        sig.get(b"d", b"-").decode(),
                                        sig.get(b"s", b"-").decode(), detail))
        ok = ok and passed
    sys.exit(0 if ok else 1)


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "sign":
        sign(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "verify":
        verify(int(sys.argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
