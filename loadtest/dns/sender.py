#!/usr/bin/env python3
"""Deterministic UDP query sender for loadtest/dns/callgrind.sh.

    sender.py PORT KIND COUNT ZONEFILE

KIND: txt (registered names, two TXT values each), nxdomain (random labels under
the zone: NXDOMAIN with SOA), nxuuid (unregistered UUID-shaped names: a replica
miss), refused (names outside the zone), tcp (the txt questions over one TCP
connection, each window of 16 written at once, as a resolver pipelines them).
Queries carry EDNS (1232, as resolvers send) and go out in windows of 16, so a
batching receive loop sees batches. Prints "sent answered rcodes".
"""
import random
import socket
import struct
import sys

port, kind, count, zonefile = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ZONE = "auth.bench.test"
WINDOW = 16
rng = random.Random(1234)  # the same names on every run
registered = [l.split()[0] for l in open(zonefile) if " TXT " in l]


def name(i):
    if kind in ("txt", "tcp"):
        return f"{registered[i % len(registered)]}.{ZONE}"
    if kind == "nxdomain":
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12)) + "." + ZONE
    if kind == "nxuuid":
        h = "%032x" % rng.getrandbits(128)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}.{ZONE}"
    if kind == "refused":
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10)) + ".example.com"
    raise SystemExit(f"unknown kind {kind}")


def packet(qid, qname):
    wire = b"".join(bytes([len(l)]) + l.encode() for l in qname.split(".")) + b"\0"
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1)
    opt = b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0)
    return header + wire + struct.pack(">HH", 16, 1) + opt


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise socket.timeout("closed")
        buf += chunk
    return buf


tcp = kind == "tcp"
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
s.settimeout(10)
s.connect(("127.0.0.1", port))
if tcp:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
answered, rcodes = 0, {}
i = 0
while i < count:
    n = min(WINDOW, count - i)
    packets = [packet((i + k) & 0xFFFF, name(i + k)) for k in range(n)]
    if tcp:
        s.sendall(b"".join(struct.pack(">H", len(p)) + p for p in packets))
    else:
        for p in packets:
            s.send(p)
    for _ in range(n):
        try:
            reply = read_exact(s, struct.unpack(">H", read_exact(s, 2))[0]) if tcp else s.recv(4096)
        except socket.timeout:
            break
        answered += 1
        rc = reply[3] & 0xF
        rcodes[rc] = rcodes.get(rc, 0) + 1
    i += n
print(count, answered, rcodes)
