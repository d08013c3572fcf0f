"""The TXT lookup the dkimpy tools (arcpy.py, dkimpy.py) give dkimpy as its
dnsfunc: keys come from the test's DNS server on 127.0.0.1, never from the
machine's resolver. Imported from the scripts' own directory (sys.path[0]).
"""
import dns.resolver


def txt_lookup(port):
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ["127.0.0.1"]
    res.port = port

    def lookup(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        try:
            answer = res.resolve(name, "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        for rr in answer:
            return b"".join(rr.strings)
        return None
    return lookup
