#!/usr/bin/env python3
"""Writes the seed queries for the packet_handler fuzz target into fuzz/seeds/.

Plain DNS queries (RFC 1035 wire format, no TCP length prefix) for names in the
target's zone `a.example` (see fuzz_targets/packet_handler.rs): the registered
subdomain, the static records, the apex, a name that does not exist, one outside
the zone, the same with EDNS, and inputs that once failed (regress-*). Run it
again after changing the list:
    python3 fuzz/make-seeds.py
"""
import os
import struct

TYPES = {"A": 1, "NS": 2, "SOA": 6, "TXT": 16, "AAAA": 28, "OPT": 41, "AXFR": 252, "ANY": 255, "CAA": 257}
CLASSES = {"IN": 1, "CH": 3}


def name(n):
    out = b""
    for label in n.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(qid, qname, qtype, qclass="IN", rd=True, edns=None):
    """edns: None, or (udp payload size, DO bit)."""
    flags = 0x0100 if rd else 0
    header = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    body = name(qname) + struct.pack(">HH", TYPES[qtype], CLASSES[qclass])
    if edns:
        size, do = edns
        body += b"\0" + struct.pack(">HHIH", TYPES["OPT"], size, 0x8000 if do else 0, 0)
    return header + body


REG = "00000000-0000-0000-0000-000000000001.a.example"
SEEDS = {
    "txt-registered": query(0x1001, REG, "TXT"),
    "txt-registered-edns": query(0x1002, REG, "TXT", edns=(1232, True)),
    "txt-registered-upper": query(0x1003, REG.upper(), "TXT", rd=False),
    "a-registered": query(0x1004, REG, "A"),
    "txt-static": query(0x1005, "x.y.a.example", "TXT"),
    "txt-empty-nonterminal": query(0x1006, "y.a.example", "TXT"),
    "soa-apex": query(0x1007, "a.example", "SOA"),
    "ns-apex": query(0x1008, "a.example", "NS", edns=(512, False)),
    "any-apex": query(0x1009, "a.example", "ANY"),
    "caa-apex": query(0x100A, "a.example", "CAA"),
    "a-ns1": query(0x100B, "ns1.a.example", "A"),
    "aaaa-ns1": query(0x100C, "ns1.a.example", "AAAA"),
    "txt-nxdomain": query(0x100D, "nope.a.example", "TXT", edns=(4096, False)),
    "a-outside-zone": query(0x100E, "example.org", "A"),
    "axfr-apex": query(0x100F, "a.example", "AXFR"),
    "txt-chaos": query(0x1010, "version.bind", "TXT", qclass="CH"),
    # Regression: a question name that is only a compression pointer into the
    # header (offset 2, the flags). hickory-server echoes the question section
    # verbatim, but the answer's flags differ, so the echoed name no longer parses.
    # Found by this target on 2026-12-01.
    "regress-qname-pointer-into-header": struct.pack(">HHHHHH", 0x1005, 0x0100, 1, 0, 0, 0)
    + b"\xc0\x02" + struct.pack(">HH", TYPES["TXT"], CLASSES["IN"]),
}

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
for file_name, packet in SEEDS.items():
    with open(os.path.join(here, file_name), "wb") as f:
        f.write(packet)
