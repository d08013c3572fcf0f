#!/usr/bin/python3
"""Seal or verify ARC (RFC 8617) with dkimpy (Debian python3-dkim), for the
tests.

  arcpy.py seal KEYFILE DOMAIN SELECTOR SRVID < message > sealed-message
      adds the next ARC set (rsa-sha256, relaxed/relaxed; KEYFILE: PEM RSA
      key); the Authentication-Results field of authserv-id SRVID gives the
      ARC-Authentication-Results and, by its arc= result, cv=.
  arcpy.py verify PORT < message
      validates the chain, keys from the DNS server on 127.0.0.1:PORT;
      prints "cv=<pass|fail|none> <reason>" and exits 0 when it passes.
"""
import sys

# Importing loopbackdns would otherwise leave a __pycache__ in testdata.
sys.dont_write_bytecode = True

import dkim  # noqa: E402
from loopbackdns import txt_lookup  # noqa: E402


def seal(keyfile, domain, selector, srv_id):
    msg = sys.stdin.buffer.read()
    with open(keyfile, "rb") as f:
        key = f.read()
    fields = dkim.arc_sign(msg, selector.encode(), domain.encode(), key, srv_id.encode(),
                           include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    if not fields:
        sys.exit("arc_sign added nothing: no Authentication-Results of " + srv_id)
    sys.stdout.buffer.write(b"".join(fields) + msg)


def verify(port):
    msg = sys.stdin.buffer.read()
    cv, results, reason = dkim.arc_verify(msg, dnsfunc=txt_lookup(port))
    cv = (cv or b"fail").decode()
    print("cv=%s %s" % (cv, reason))
    for r in results:
        print("  i=%d as-valid=%s ams-valid=%s cv=%s d=%s" % (
            r["instance"], r.get("as-valid"), r.get("ams-valid"),
            r.get("cv", b"-").decode(), r.get("as-domain", b"-").decode()))
    sys.exit(0 if cv == "pass" else 1)


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "seal":
        seal(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "verify":
        verify(int(sys.argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
