#!/usr/bin/env python3
"""The client side of tests/anycast/run.sh: ask the anycast address, then judge.

  probe.py run --out FILE --stop FILE --zone Z --txt-name N --v4 A --v6 A [--interval S] [--timeout S] [--max-ticks N]
      Every INTERVAL seconds, each on a fresh socket (so a fresh source port and
      a fresh ECMP choice at the router), sends: SOA <zone> (UDP), TXT <txt-name>
      (UDP), TXT pop.<zone> (UDP, TCP and UDP over IPv6; each PoP answers it with
      its own name). A question is *answered* when a NOERROR, authoritative reply
      with at least one answer record arrives within TIMEOUT; anything else
      (no reply, ICMP port unreachable, a TCP reset, another rcode) is *lost*.
      One JSON line per question goes to --out, and one per stall (the probe woken
      more than 0.5 s late: the machine is overloaded; missed ticks are skipped).
      Stops when --stop exists, or after --max-ticks ticks, whichever comes first.

  probe.py report --results FILE --events FILE --value1 V --value2 V [--grace S] [--max-withdraw S] [--max-reannounce S]
      Reads the questions and the run's events (NAME=EPOCH lines: kill, withdraw4,
      withdraw6, publish2, restart, ready, reannounce4, reannounce6, end), checks
      the failover rules and prints the summary. Exit status 1 when a rule fails.

Standard library only; times are CLOCK_REALTIME seconds (bash's $EPOCHREALTIME).
"""

import argparse
import errno
import json
import os
import random
import selectors
import socket
import struct
import sys
import time

SOA, TXT = 6, 16
# Woken this much later than asked: the probe was not scheduled (an overloaded machine).
STALL = 0.5


def build_query(qid, name, qtype):
    out = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)  # RD=0: we ask an authoritative server
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0" + struct.pack(">HH", qtype, 1)


def skip_name(msg, off):
    while True:
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def parse_reply(msg, qid):
    """(rcode, aa, [(type, text)]) or None when it is not our reply."""
    if len(msg) < 12:
        return None
    rid, flags, qd, an, _ns, _ar = struct.unpack(">HHHHHH", msg[:12])
    if rid != qid or not flags & 0x8000:
        return None
    off = 12
    for _ in range(qd):
        off = skip_name(msg, off) + 4
    records = []
    for _ in range(an):
        off = skip_name(msg, off)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        off += rdlen
        text = ""
        if rtype == TXT:
            parts, i = [], 0
            while i < len(rdata):
                parts.append(rdata[i + 1:i + 1 + rdata[i]].decode("ascii", "replace"))
                i += 1 + rdata[i]
            text = "".join(parts)
        records.append((rtype, text))
    return flags & 0xF, bool(flags & 0x0400), records


class Question:
    def __init__(self, kind, family, tcp, server, name, qtype, timeout):
        self.kind, self.tcp, self.qtype = kind, tcp, qtype
        self.qid = random.randrange(65536)
        self.query = build_query(self.qid, name, qtype)
        self.sent = time.time()
        self.deadline = self.sent + timeout
        self.buf = b""
        self.tcp_sent = False
        self.result = None
        self.sock = socket.socket(family, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        if tcp:
            err = self.sock.connect_ex((server, 53))
            if err not in (0, errno.EINPROGRESS):
                self.finish(False, os.strerror(err))
        else:
            try:
                self.sock.connect((server, 53))
                self.sock.send(self.query)
            except OSError as e:
                self.finish(False, e.strerror or str(e))

    def events(self):
        return selectors.EVENT_WRITE if self.tcp and not self.tcp_sent else selectors.EVENT_READ

    def on_event(self):
        try:
            if self.tcp and not self.tcp_sent:
                err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    return self.finish(False, os.strerror(err))
                self.sock.send(struct.pack(">H", len(self.query)) + self.query)
                self.tcp_sent = True
                return None
            data = self.sock.recv(65535)
        except OSError as e:
            return self.finish(False, e.strerror or str(e))
        if self.tcp:
            if not data:
                return self.finish(False, "connection closed")
            self.buf += data
            if len(self.buf) < 2 or len(self.buf) < 2 + struct.unpack(">H", self.buf[:2])[0]:
                return None
            data = self.buf[2:]
        try:
            reply = parse_reply(data, self.qid)
        except (IndexError, struct.error):
            return self.finish(False, "malformed reply")
        if reply is None:
            return None  # not ours: keep waiting
        rcode, aa, records = reply
        if rcode != 0:
            return self.finish(False, f"rcode {rcode}")
        if not aa or not records:
            return self.finish(False, "no authoritative answer")
        if not any(ty == self.qtype for ty, _ in records):
            return self.finish(False, f"no record of type {self.qtype} in the answer")
        texts = [t for ty, t in records if ty == TXT]
        return self.finish(True, "", " ".join(sorted(texts)) if self.qtype == TXT else "soa")

    def finish(self, ok, why, answer=""):
        """Records the outcome; the caller unregisters and closes the socket."""
        self.result = {"kind": self.kind, "sent": round(self.sent, 6), "done": round(time.time(), 6),
                       "ok": ok, "why": why, "answer": answer}
        return self.result


def run(args):
    kinds = [
        ("soa4", socket.AF_INET, False, args.v4, args.zone, SOA),
        ("txt4", socket.AF_INET, False, args.v4, args.txt_name, TXT),
        ("pop4", socket.AF_INET, False, args.v4, "pop." + args.zone, TXT),
        ("pop4tcp", socket.AF_INET, True, args.v4, "pop." + args.zone, TXT),
        ("pop6", socket.AF_INET6, False, args.v6, "pop." + args.zone, TXT),
    ]
    sel = selectors.DefaultSelector()
    out = open(args.out, "w", buffering=1)
    pending = []
    start = time.time()
    tick = 0

    def done(q, registered):
        # Unregister before closing: a closed socket's descriptor number is reused at once.
        if registered:
            sel.unregister(q.sock)
        q.sock.close()
        out.write(json.dumps(q.result) + "\n")

    def stalled(since, until):
        # The probe itself did not run for a while: the machine is starved.
        out.write(json.dumps({"kind": "stall", "sent": round(since, 6), "done": round(until, 6)}) + "\n")

    while True:
        now = time.time()
        if tick < args.max_ticks and now >= start + tick * args.interval:
            if os.path.exists(args.stop):
                tick = args.max_ticks
            else:
                due = start + tick * args.interval
                if now - due > STALL:
                    stalled(due, now)
                    tick = int((now - start) / args.interval)  # skip the ticks missed, no burst
                tick += 1
                for kind in kinds:
                    q = Question(*kind, args.timeout)
                    if q.result:
                        done(q, False)
                    else:
                        sel.register(q.sock, q.events(), q)
                        pending.append(q)
        if tick >= args.max_ticks and not pending:
            break
        wake = start + tick * args.interval if tick < args.max_ticks else now + args.timeout
        if pending:
            wake = min(wake, min(q.deadline for q in pending))
        ready = sel.select(max(0.0, wake - time.time()))
        if time.time() - wake > STALL:
            stalled(wake, time.time())
        for key, _ in ready:
            q = key.data
            before = q.events()
            q.on_event()
            if not q.result and q.events() != before:
                sel.modify(q.sock, q.events(), q)
        now = time.time()
        for q in pending:
            if not q.result and now >= q.deadline:
                q.finish(False, "timeout")
        for q in pending:
            if q.result:
                done(q, True)
        pending = [q for q in pending if not q.result]
    out.close()


def fmt(s):
    return f"{s:.2f} s"


def report(args):
    ev = {}
    with open(args.events) as f:
        for line in f:
            if "=" in line:
                k, v = line.strip().split("=", 1)
                ev[k] = float(v)
    records = [json.loads(line) for line in open(args.results) if line.strip()]
    stalls = [r for r in records if r["kind"] == "stall"]
    qs = [r for r in records if r["kind"] != "stall"]
    # A question that timed out while the probe itself could not run for longer than
    # STALL was starved along with it, not lost to routing (which fails at once:
    # ICMP port unreachable, a TCP reset): it is left out, and counted.
    def starved(q):
        return q["why"] == "timeout" and any(
            s["sent"] < q["done"] and s["done"] > q["sent"] for s in stalls)
    unjudged = [q for q in qs if starved(q)]
    qs = [q for q in qs if not starved(q)]
    failures = []

    def fail(msg):
        failures.append(msg)

    for k in ("kill", "withdraw4", "withdraw6", "publish2", "restart", "ready", "reannounce4", "reannounce6", "end"):
        if k not in ev:
            fail(f"event {k} was not recorded")
    if failures:
        print("\n".join("anycast: FAILED: " + m for m in failures))
        return 1

    def withdraw_of(q):
        return ev["withdraw6"] if q["kind"].endswith("6") else ev["withdraw4"]

    before = [q for q in qs if q["sent"] < ev["kill"]]
    window = [q for q in qs if ev["kill"] <= q["sent"] <= withdraw_of(q) + args.grace]
    pop2_only = [q for q in qs if withdraw_of(q) + args.grace < q["sent"] < ev["restart"]]
    restarting = [q for q in qs if ev["restart"] <= q["sent"]]
    both_again = [q for q in restarting
                  if q["sent"] > max(ev["reannounce4"], ev["reannounce6"]) + args.grace]
    lost_in_window = [q for q in window if not q["ok"]]
    if not before or not pop2_only or not both_again:
        fail(f"too few questions in a phase (before kill {len(before)}, PoP2 only {len(pop2_only)}, "
             f"after re-announce {len(both_again)})")

    def pops(phase, kinds):
        return sorted({q["answer"] for q in phase if q["ok"] and q["kind"] in kinds})

    for name, phase in (("before the kill", before), ("after the withdrawal", pop2_only),
                        ("during and after PoP1's restart", restarting)):
        lost = [q for q in phase if not q["ok"]]
        if lost:
            sample = ", ".join(f'{q["kind"]} at +{q["sent"] - ev["kill"]:.2f} s ({q["why"]})' for q in lost[:5])
            fail(f"{len(lost)} questions lost {name} (times relative to the kill): {sample}")
    for kinds in (("pop4",), ("pop4tcp",), ("pop6",)):
        if pops(before, kinds) != ["pop1", "pop2"]:
            fail(f"{kinds[0]}: both PoPs should answer before the kill (ECMP), answered by {pops(before, kinds)}")
        if pops(pop2_only, kinds) != ["pop2"]:
            fail(f"{kinds[0]}: only PoP2 should answer after the withdrawal, answered by {pops(pop2_only, kinds)}")
        if pops(both_again, kinds) != ["pop1", "pop2"]:
            fail(f"{kinds[0]}: both PoPs should answer after the re-announcement, answered by {pops(both_again, kinds)}")
    # TXT of the registered name: value 1 alone until the update (made through the
    # API while PoP1 was down); after the re-announcement the newest two values,
    # 2 and 1, from both PoPs: PoP1 loaded the update it missed when it restarted.
    # (How soon PoP2 had it, through the change stream, is shown, not judged: a
    # starved machine can delay it by seconds.)
    want1, want2 = args.value1, " ".join(sorted([args.value1, args.value2]))
    txt = [q for q in qs if q["kind"] == "txt4" and q["ok"]]
    wrong = [q for q in txt if (q["sent"] < ev["publish2"] and q["answer"] != want1)
             or (q in both_again and q["answer"] != want2)]
    if wrong:
        q = wrong[0]
        fail(f'{len(wrong)} TXT answers with the wrong values, the first {q["sent"] - ev["publish2"]:+.2f} s '
             f'from the update: {q["answer"]!r}')
    fresh = [q["done"] for q in txt if q["sent"] >= ev["publish2"] and q["answer"] == want2]
    propagated = f"{fmt(min(fresh) - ev['publish2'])} after the update" if fresh else "never"

    w4, w6 = ev["withdraw4"] - ev["kill"], ev["withdraw6"] - ev["kill"]
    r4, r6 = ev["reannounce4"] - ev["restart"], ev["reannounce6"] - ev["restart"]
    after_ready = max(ev["reannounce4"], ev["reannounce6"]) - ev["ready"]
    def starved_within(t0, t1):
        seconds, upto = 0.0, t0  # the union of the stalls (they overlap) within [t0, t1]
        for st in sorted(stalls, key=lambda st: st["sent"]):
            lo, hi = max(upto, st["sent"]), min(t1, st["done"])
            if hi > lo:
                seconds += hi - lo
            upto = max(upto, min(t1, st["done"]))
        return f" (the machine was starved for {fmt(seconds)} of it: the probe could not run)" if seconds else ""

    if max(w4, w6) > args.max_withdraw:
        fail(f"withdrawal took {fmt(max(w4, w6))} after the kill (limit {fmt(args.max_withdraw)})"
             + starved_within(ev["kill"], max(ev["withdraw4"], ev["withdraw6"])))
    if after_ready > args.max_reannounce:
        fail(f"re-announcement took {fmt(after_ready)} after /ready (limit {fmt(args.max_reannounce)})"
             + starved_within(ev["ready"], max(ev["reannounce4"], ev["reannounce6"])))

    by_kind = {}
    for q in lost_in_window:
        by_kind[q["kind"]] = by_kind.get(q["kind"], 0) + 1
    lost_kinds = ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())) or "none"
    print(f"anycast: {len(qs)} questions in {ev['end'] - qs[0]['sent']:.1f} s; {len(window)} sent between "
          f"the kill and the withdrawal (+{args.grace:.1f} s), {len(lost_in_window)} of them lost ({lost_kinds})"
          + ("; every other question answered" if not failures else ""))
    print(f"anycast: the TXT update made while PoP1 was down: first answered {propagated}; "
          f"answered by both PoPs after the re-announcement")
    if stalls:
        longest = max(s["done"] - s["sent"] for s in stalls)
        print(f"anycast: note: the probe was not scheduled {len(stalls)} times (longest {fmt(longest)}): "
              f"an overloaded machine; {len(unjudged)} questions that timed out meanwhile are not counted")
    print(f"anycast: SUMMARY withdrawal {fmt(max(w4, w6))} after kill -9 (IPv4 {fmt(w4)}, IPv6 {fmt(w6)}), "
          f"{len(lost_in_window)} queries lost, re-announced {fmt(max(r4, r6))} after restart "
          f"({fmt(after_ready)} after /ready)")
    for m in failures:
        print("anycast: FAILED: " + m)
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--stop", required=True)
    r.add_argument("--zone", required=True)
    r.add_argument("--txt-name", required=True)
    r.add_argument("--v4", required=True)
    r.add_argument("--v6", required=True)
    r.add_argument("--interval", type=float, default=0.1)
    r.add_argument("--timeout", type=float, default=3.0)
    r.add_argument("--max-ticks", type=int, default=900)
    p = sub.add_parser("report")
    p.add_argument("--results", required=True)
    p.add_argument("--events", required=True)
    p.add_argument("--value1", required=True)
    p.add_argument("--value2", required=True)
    p.add_argument("--grace", type=float, default=0.2)
    p.add_argument("--max-withdraw", type=float, default=5.0)
    p.add_argument("--max-reannounce", type=float, default=5.0)
    args = ap.parse_args()
    return run(args) if args.cmd == "run" else report(args)


if __name__ == "__main__":
    sys.exit(main() or 0)
