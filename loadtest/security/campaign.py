#!/usr/bin/env python3
"""Attack drivers for loadtest/security/campaign.sh (standard library only).

Each subcommand runs one attack against a running certdns and appends one result
row to $CAMPAIGN_RESULTS (tab-separated: id, PASS|FAIL, attack, expected,
observed), and prints it. Everything talks to 127.0.0.1; every loop is bounded
in count and time. The addresses the attacks play are sent in X-Forwarded-For
(the campaign starts certdns with client_ip_header = X-Forwarded-For, and
loopback is a trusted proxy by default).
"""

import http.client
import json
import multiprocessing
import os
import random
import re
import resource
import selectors
import socket
import struct
import sys
import threading
import time
import urllib.parse

ENV = os.environ


def hostport(url):
    u = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    return u.hostname, u.port


def record(rid, ok, attack, expected, observed):
    """ok: True (PASS), False (FAIL), or None (INFO: a measurement, not a check)."""
    verdict = "INFO" if ok is None else "PASS" if ok else "FAIL"
    line = "\t".join([rid, verdict, attack, expected, observed.replace("\t", " ").replace("\n", " ")])
    with open(ENV["CAMPAIGN_RESULTS"], "a") as f:
        f.write(line + "\n")
    print(f"[{rid}] {verdict}: {attack}: {observed}", flush=True)
    return ok


# ---------------------------------------------------------------- HTTP helpers


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def location(self):
        loc = self.header("location")
        return loc[0] if loc else ""


def request(base, method, path, headers=(), body=None, timeout=15):
    """One request on a fresh connection. `headers` is a list of (name, value);
    a name may repeat (two X-Forwarded-For lines)."""
    host, port = hostport(base)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        data = body.encode() if isinstance(body, str) else body
        for k, v in headers:
            conn.putheader(k, v)
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        return Resp(r.status, r.getheaders(), text)
    finally:
        conn.close()


CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """A portal visitor from one client address, keeping its cookies."""

    def __init__(self, portal, address):
        self.portal = portal
        self.address = address
        self.cookies = {}

    def _headers(self, extra=()):
        h = [("X-Forwarded-For", self.address)] if self.address else []
        if self.cookies:
            h.append(("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items())))
        return h + list(extra)

    def _keep(self, r):
        for c in r.header("set-cookie"):
            name, _, rest = c.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in c or value == "":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return r

    def get(self, path):
        return self._keep(request(self.portal, "GET", path, self._headers()))

    def csrf(self, page):
        r = self.get(page)
        m = CSRF_RE.search(r.body)
        if not m:
            raise RuntimeError(f"no csrf token on {page} (status {r.status})")
        return m.group(1)

    def post(self, path, fields, page=None):
        """POSTs a form; the CSRF token comes from `page` (default: `path`)."""
        token = self.csrf(page or path)
        body = urllib.parse.urlencode([("csrf", token)] + list(fields.items()))
        h = self._headers([("Content-Type", "application/x-www-form-urlencoded")])
        return self._keep(request(self.portal, "POST", path, h, body))

    def session(self):
        return next((v for k, v in self.cookies.items() if k.endswith("certdns_session")), None)


def outbox_mails(path):
    """The mails in the outbox file: list of dicts (to, subject, body)."""
    try:
        text = open(path).read()
    except FileNotFoundError:
        return []
    mails = []
    for chunk in re.split(r"(?m)^(?=From: )", text):
        if not chunk.strip():
            continue
        head, _, body = chunk.partition("\n\n")
        fields = dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)
        mails.append({"to": fields.get("To", ""), "subject": fields.get("Subject", ""), "body": body})
    return mails


def link_token(body, path):
    m = re.search(re.escape(path) + r"\?token=([A-Za-z0-9_-]+)", body)
    return m.group(1) if m else None


def outbox_path():
    return os.path.join(ENV["WORK"], "outbox.eml")


# ---------------------------------------------------------- /proc measurements

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def metric(ops, name):
    """Sum of a Prometheus series over its labels, from the ops listener (0 if absent)."""
    r = request(ops, "GET", "/metrics")
    total = 0.0
    for line in r.body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


# ------------------------------------------------------------------- DNS probe


def dns_query(name, qtype, qid):
    header = struct.pack(">HHHHHH", qid, 0x0000, 1, 0, 0, 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split(".")) + b"\0"
    return header + qname + struct.pack(">HH", qtype, 1)


def dns_probe(server, names, seconds, interval, out):
    """Queries `names` (list of (name, qtype)) one at a time for `seconds`, one
    every `interval` s; puts latencies (ms) and the number of lost/bad answers."""
    host, port = server
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    lat, lost, bad = [], 0, 0
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        name, qtype = names[i % len(names)]
        qid = random.randrange(65536)
        q = dns_query(name, qtype, qid)
        t0 = time.perf_counter()
        s.sendto(q, (host, port))
        try:
            while True:
                data, _ = s.recvfrom(4096)
                if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                    break
            dt = (time.perf_counter() - t0) * 1000
            flags, _, ancount = struct.unpack(">HHH", data[2:8])
            if flags & 0x000F != 0 or ancount < 1:
                bad += 1
            lat.append(dt)
        except socket.timeout:
            lost += 1
        i += 1
        sleep = interval - (time.perf_counter() - t0)
        if sleep > 0:
            time.sleep(sleep)
    out.put({"lat": lat, "lost": lost, "bad": bad})


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def dns_names():
    zone = ENV["ZONE"]
    return [(ENV["TXT_NAME"], 16), (zone, 6)]


def dns_server():
    return (ENV["DNS_HOST"], int(ENV["DNS_PORT"]))


# ------------------------------------------------------ a. reset-password flood


def flood_worker(portal, index, seconds, one_address, kind, out):
    """One flooding client: its own keep-alive connection; `kind` "reset" posts
    bogus reset tokens, "login" wrong passwords for the operator's account."""
    os.nice(10)  # the load generator must not be what slows DNS down
    host, port = hostport(portal)
    b = Browser(portal, "192.0.2.1")
    path = "/reset-password" if kind == "reset" else "/login"
    token = b.csrf(path)
    cookie = "; ".join(f"{k}={v}" for k, v in b.cookies.items())
    counts, n, errors = {}, 0, 0
    conn = None
    end = time.monotonic() + seconds
    while time.monotonic() < end and n < 1_000_000:
        if one_address:
            address = one_address
        else:  # every request from an address of its own
            address = f"10.{index * 8 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"
        if kind == "reset":
            fields = {
                "csrf": token,
                "token": f"bogus-{index}-{n}-{random.getrandbits(64):x}",
                "password": "correct-horse-battery-9",
                "password_confirm": "correct-horse-battery-9",
            }
        else:
            fields = {"csrf": token, "email": ENV["OPERATOR_EMAIL"], "password": f"guess-{index}-{n}-password"}
        body = urllib.parse.urlencode(fields)
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request(
                "POST",
                path,
                body,
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Cookie": cookie,
                    "X-Forwarded-For": address,
                },
            )
            r = conn.getresponse()
            r.read()
            counts[r.status] = counts.get(r.status, 0) + 1
            if r.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            errors += 1
            if conn is not None:
                conn.close()
            conn = None
        n += 1
    out.put((counts, errors))


def run_flood(portal, pid, clients, seconds, one_address, kind="reset"):
    """Runs the flood with `clients` processes while sampling RSS; returns stats."""
    q = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=flood_worker, args=(portal, i, seconds, one_address, kind, q))
        for i in range(clients)
    ]
    rss_before = rss_mib(pid)
    cpu_before = cpu_seconds(pid)
    t0 = time.monotonic()
    for p in procs:
        p.start()
    rss_max = rss_before
    while any(p.is_alive() for p in procs) and time.monotonic() - t0 < seconds + 30:
        rss_max = max(rss_max, rss_mib(pid))
        time.sleep(0.25)
    results = [q.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=5)
    elapsed = time.monotonic() - t0
    counts, errors = {}, 0
    for c, e in results:
        errors += e
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v
    return {
        "counts": counts,
        "errors": errors,
        "answered": sum(counts.values()),
        "elapsed": elapsed,
        "cpu": cpu_seconds(pid) - cpu_before,
        "rss_before": rss_before,
        "rss_after": rss_mib(pid),
        "rss_max": rss_max,
    }


def cmd_reset_flood(args):
    portal, ops, pid = ENV["PORTAL"], ENV["OPS"], int(ENV["PID"])
    seconds = float(args[0]) if args else 20.0
    clients = 16
    # DNS at rest.
    q = multiprocessing.Queue()
    rest = multiprocessing.Process(target=dns_probe, args=(dns_server(), dns_names(), 6.0, 0.005, q))
    rest.start()
    rest_res = q.get(timeout=30)
    rest.join()
    hashes_before = metric(ops, "certdns_portal_password_hashes_total")
    # DNS during the flood, in a process of its own (normal priority).
    busy = multiprocessing.Process(target=dns_probe, args=(dns_server(), dns_names(), seconds, 0.005, q))
    busy.start()
    st = run_flood(portal, pid, clients, seconds, None)
    busy_res = q.get(timeout=60)
    busy.join()
    hashes = metric(ops, "certdns_portal_password_hashes_total") - hashes_before

    answered = st["answered"]
    rps = answered / st["elapsed"]
    cpu_ms = st["cpu"] * 1000 / max(answered, 1)
    p50r, p99r = pct(rest_res["lat"], 50), pct(rest_res["lat"], 99)
    p50b, p99b = pct(busy_res["lat"], 50), pct(busy_res["lat"], 99)
    non400 = answered - st["counts"].get(400, 0)
    rss_growth = st["rss_after"] - st["rss_before"]
    observed = (
        f"{answered} requests in {st['elapsed']:.1f} s ({rps:.0f}/s) from {clients} clients, each request from its own "
        f"address; statuses {dict(sorted(st['counts'].items()))}, transport errors {st['errors']}; "
        f"password hashes computed {hashes:.0f}; certdns CPU {st['cpu']:.2f} s = {cpu_ms:.3f} ms/request; "
        f"RSS {st['rss_before']:.1f} -> {st['rss_after']:.1f} MiB (max {st['rss_max']:.1f}); "
        f"DNS p50/p99 at rest {p50r:.2f}/{p99r:.2f} ms ({len(rest_res['lat'])} queries, {rest_res['lost']} lost), "
        f"during {p50b:.2f}/{p99b:.2f} ms ({len(busy_res['lat'])} queries, {busy_res['lost']} lost, "
        f"{busy_res['bad'] + rest_res['bad']} bad answers)"
    )
    ok = (
        answered > 100
        and non400 == 0
        and hashes == 0
        and cpu_ms < 1.0
        and rss_growth < 32
        and busy_res["lost"] == 0
        and busy_res["bad"] + rest_res["bad"] == 0
        and p99b < max(10 * p99r, 20.0)
    )
    record(
        "a",
        ok,
        "reset-password flood (16 clients, 20 s, an address per request)",
        "every request 400, no password hash, CPU well under 1 ms/request, RSS flat (< 32 MiB growth), "
        "DNS p99 about unchanged (no loss, < 20 ms or < 10x rest)",
        observed,
    )

    # The same from ONE address: the per-address budget answers 429.
    st1 = run_flood(portal, pid, clients, 4.0, "198.51.100.77")
    c = st1["counts"]
    observed1 = (
        f"{st1['answered']} requests in {st1['elapsed']:.1f} s from 198.51.100.77: statuses {dict(sorted(c.items()))}; "
        f"CPU {st1['cpu'] * 1000 / max(st1['answered'], 1):.3f} ms/request"
    )
    ok1 = c.get(400, 0) == 10 and c.get(429, 0) == st1["answered"] - 10
    record(
        "a1",
        ok1,
        "reset-password flood from one address (16 clients, 4 s)",
        "10 answered 400 (the address's 10/min budget), every other one 429",
        observed1,
    )


def cmd_login_flood(args):
    """The residual risk: sign-in guesses from ever-new addresses each cost a
    password hash. The hash pool bounds the cost; what do the owner and DNS see?"""
    portal, ops, pid = ENV["PORTAL"], ENV["OPS"], int(ENV["PID"])
    seconds = float(args[0]) if args else 10.0
    q = multiprocessing.Queue()
    rest = multiprocessing.Process(target=dns_probe, args=(dns_server(), dns_names(), 3.0, 0.005, q))
    rest.start()
    rest_res = q.get(timeout=30)
    rest.join()
    hashes_before = metric(ops, "certdns_portal_password_hashes_total")
    busy_before = metric(ops, "certdns_portal_password_busy_total")
    owner = {}

    def owner_signs_in():
        time.sleep(seconds / 2)
        t = time.monotonic()
        _, r = login(portal, ENV["OPERATOR_EMAIL"], ENV["OPERATOR_PASSWORD"], "198.51.100.250")
        owner["r"] = (r.status, time.monotonic() - t)

    probe = multiprocessing.Process(target=dns_probe, args=(dns_server(), dns_names(), seconds, 0.005, q))
    probe.start()
    th = threading.Thread(target=owner_signs_in)
    th.start()
    st = run_flood(portal, pid, 16, seconds, None, kind="login")
    busy_res = q.get(timeout=60)
    probe.join()
    th.join(timeout=30)
    hashes = metric(ops, "certdns_portal_password_hashes_total") - hashes_before
    busy = metric(ops, "certdns_portal_password_busy_total") - busy_before
    answered = st["answered"]
    status, secs = owner.get("r", ("none", 0))
    observed = (
        f"{answered} wrong sign-ins for the operator in {st['elapsed']:.1f} s ({answered / st['elapsed']:.0f}/s), each "
        f"from a new address: statuses {dict(sorted(st['counts'].items()))}; password hashes {hashes:.0f} "
        f"({hashes / st['elapsed']:.0f}/s), refused as busy {busy:.0f}; certdns CPU {st['cpu']:.1f} s "
        f"({st['cpu'] / st['elapsed'] * 100:.0f}% of one core); RSS {st['rss_before']:.1f} -> {st['rss_after']:.1f} MiB "
        f"(max {st['rss_max']:.1f}); DNS p50/p99 at rest {pct(rest_res['lat'], 50):.2f}/{pct(rest_res['lat'], 99):.2f} ms, "
        f"during {pct(busy_res['lat'], 50):.2f}/{pct(busy_res['lat'], 99):.2f} ms ({busy_res['lost']} lost); the owner "
        f"signing in from its own address mid-flood: {status} after {secs:.2f} s"
    )
    record(
        "a2",
        None,
        "sign-in guessing from ever-new addresses (16 clients, 10 s; residual risk)",
        "measured, not checked: every guess costs one argon2id hash, at most portal.password_hash_threads at once; "
        "memory and DNS stay bounded, sign-ins queue",
        observed,
    )


# --------------------------------------------------------------- b. slowloris


HALF = b"POST /update HTTP/1.1\r\nHost: x\r\nX-A: "


def cmd_slowloris(args):
    api, portal = ENV["HTTP"], ENV["PORTAL"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4096), hard), hard))
    n_api, n_portal = 1000, 300
    sel = selectors.DefaultSelector()
    socks = {}
    t0 = time.monotonic()
    for target, n in ((api, n_api), (portal, n_portal)):
        addr = hostport(target)
        for _ in range(n):
            s = socket.create_connection(addr, timeout=5)
            s.sendall(HALF)
            s.setblocking(False)
            socks[s] = {"target": target, "opened_at": time.monotonic(), "closed_at": None, "got": b""}
            sel.register(s, selectors.EVENT_READ)
    ready = time.monotonic()  # every socket open: the clock of the checks starts here

    def poll(until):
        while time.monotonic() < until:
            for key, _ in sel.select(timeout=0.2):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    socks[s]["got"] += data[:200]
                    continue
                socks[s]["closed_at"] = time.monotonic()
                sel.unregister(s)
                s.close()

    def still_open(target):
        return sum(1 for v in socks.values() if v["target"] == target and v["closed_at"] is None)

    # Is the service still there while the sockets are held?
    health = {}

    def probe(name, base):
        t = time.monotonic()
        try:
            r = request(base, "GET", "/health", timeout=30)
            health[name] = (r.status, time.monotonic() - t)
        except OSError as e:
            health[name] = (f"error {e}", time.monotonic() - t)

    probes = [threading.Thread(target=probe, args=(n, b)) for n, b in (("api", api), ("portal", portal))]
    for p in probes:
        p.start()
    poll(ready + 15)
    at15 = (still_open(api), still_open(portal))
    poll(ready + 25)
    at25 = (still_open(api), still_open(portal))
    for p in probes:
        p.join(timeout=10)
    replies = {}
    for v in socks.values():
        head = v["got"].split(b"\r\n", 1)[0].decode("latin-1") or "(nothing)"
        replies[head] = replies.get(head, 0) + 1
    for s in list(socks):
        if socks[s]["closed_at"] is None:
            sel.unregister(s)
            s.close()

    def lifetimes(target):
        return sorted(v["closed_at"] - v["opened_at"] for v in socks.values() if v["target"] == target and v["closed_at"])

    def span(values):
        return f"{values[0]:.1f}-{values[-1]:.1f} s" if values else "n/a"

    life_api, life_portal = lifetimes(api), lifetimes(portal)
    queued = sum(1 for x in life_portal if x > 12)

    def fmt(h):
        status, secs = h
        return f"{status} in {secs * 1000:.0f} ms"

    observed = (
        f"opened {n_api} API + {n_portal} portal half-header sockets in {ready - t0:.1f} s; meanwhile GET /health: "
        f"API {fmt(health.get('api', ('none', 0)))}, portal {fmt(health.get('portal', ('none', 0)))}; still open "
        f"15 s after the last was opened: API {at15[0]}, portal {at15[1]}; after 25 s: API {at25[0]}, portal "
        f"{at25[1]}; each socket's life until the server closed it: API {span(life_api)}, portal "
        f"{span(life_portal)} ({queued} portal sockets over 12 s: queued behind the 256-connection cap); "
        f"sent before closing: {replies}"
    )
    ok = (
        health.get("api", (0,))[0] == 200
        and health.get("api", (0, 99))[1] < 2
        and health.get("portal", (0,))[0] == 200
        and at15[0] == 0
        and at15[1] <= n_portal - 256
        and at25 == (0, 0)
        and life_api
        and life_api[-1] < 12
    )
    record(
        "b",
        ok,
        "slowloris: 1000 API + 300 portal sockets with half a header line",
        "API /health answers at once; each socket closed header_read_timeout_secs = 10 s after it was accepted "
        "(API: none open at 15 s; portal: only the 44 over its 256-connection cap, which wait in the accept queue "
        "and get their 10 s once a slot frees, as does a portal /health meanwhile; none open at all at 25 s)",
        observed,
    )


def stalled_post(base, path, extra_headers, timeout):
    """Sends headers with Content-Length: 100 and 10 bytes of body, then waits."""
    host, port = hostport(base)
    s = socket.create_connection((host, port), timeout=timeout)
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 100\r\n"
    for k, v in extra_headers:
        head += f"{k}: {v}\r\n"
    t = time.monotonic()
    s.sendall(head.encode() + b"\r\n" + b"csrf=abcde")
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                break
    except socket.timeout:
        pass
    elapsed = time.monotonic() - t
    s.close()
    status = data.split(b"\r\n", 1)[0].decode("latin-1") or "(no answer)"
    return status, elapsed


def cmd_stall(args):
    portal_timeout = float(ENV.get("PORTAL_TIMEOUT", "30"))
    b = Browser(ENV["PORTAL"], "198.51.100.31")
    b.csrf("/login")
    cookie = "; ".join(f"{k}={v}" for k, v in b.cookies.items())
    res = {}

    def run(name, base, path, headers, limit):
        res[name] = stalled_post(base, path, headers, limit + 15)

    form = ("Content-Type", "application/x-www-form-urlencoded")
    threads = [
        threading.Thread(target=run, args=("portal", ENV["PORTAL"], "/login", [form, ("Cookie", cookie)], portal_timeout)),
        threading.Thread(target=run, args=("api", ENV["HTTP"], "/update", [("Content-Type", "application/json")], 10)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ps, pt = res["portal"]
    as_, at = res["api"]
    observed = f"portal POST /login: '{ps}' after {pt:.1f} s; API POST /update: '{as_}' after {at:.1f} s"
    ok = " 408" in ps and pt < portal_timeout + 2 and " 408" in as_ and at < 10 + 2
    record(
        "b2",
        ok,
        "stalled body (Content-Length 100, 10 bytes sent)",
        f"408 within portal.request_timeout_secs (set to {portal_timeout:.0f} s for the campaign) and "
        "api.request_timeout_secs (10 s)",
        observed,
    )


# ------------------------------------------------------- d. reset links in logs


def request_reset(portal, email, address):
    b = Browser(portal, address)
    return b.post("/forgot-password", {"email": email})


def cmd_reset(args):
    """Asks for a password reset for args[0] from address args[1]; prints the status."""
    r = request_reset(ENV["PORTAL"], args[0], args[1])
    print(r.status)


def cmd_use_reset(args):
    """Opens the newest reset link in the outbox and sets args[0] as the password."""
    portal = ENV["PORTAL"]
    mails = [m for m in outbox_mails(outbox_path()) if m["subject"] == "Reset your password"]
    token = link_token(mails[-1]["body"], "/reset-password")
    b = Browser(portal, "198.51.100.41")
    page = b.get(f"/reset-password?token={token}")
    r = b.post(
        "/reset-password",
        {"token": token, "password": args[0], "password_confirm": args[0]},
        page=f"/reset-password?token={token}",
    )
    print(f"{page.status} {r.status}")


def cmd_secrets(args):
    """Prints the secrets the log must not hold: every token in the outbox, one a line."""
    for m in outbox_mails(outbox_path()):
        for path in ("/reset-password", "/verify-email"):
            t = link_token(m["body"], path)
            if t:
                print(t)


# --------------------------------------------------------------- e. lockout


def signup(portal, email, password, address):
    b = Browser(portal, address)
    r = b.post("/signup", {"email": email, "password": password, "password_confirm": password})
    return b, r


def verify(portal, email, address):
    mails = [m for m in outbox_mails(outbox_path()) if m["to"].strip("<>") == email and "/verify-email" in m["body"]]
    token = link_token(mails[-1]["body"], "/verify-email")
    b = Browser(portal, address)
    return b, b.get(f"/verify-email?token={token}")


def login(portal, email, password, address):
    b = Browser(portal, address)
    r = b.post("/login", {"email": email, "password": password})
    return b, r


def cmd_lockout(args):
    portal = ENV["PORTAL"]
    email, password = "victim@example.com", "victim-password-0815"
    b, r = signup(portal, email, password, "198.51.100.50")
    vb, vr = verify(portal, email, "198.51.100.50")
    setup = f"sign-up {r.status}, confirmation link {vr.status} -> {vr.location()} session={'yes' if vb.session() else 'no'}"
    statuses = []
    for i in range(12):
        _, r = login(portal, email, f"wrong-password-{i:02}", "203.0.113.50")
        statuses.append(r.status)
    ob, r = login(portal, email, password, "203.0.113.51")
    right = f"{r.status} -> {r.location()}, session cookie {'set' if ob.session() else 'missing'}"
    expected_seq = [401] * 4 + [429] * 8
    observed = f"{setup}; 12 wrong passwords from A: {statuses}; right password from B: {right}"
    ok = vr.status == 303 and statuses == expected_seq and r.status == 303 and ob.session() is not None
    record(
        "e",
        ok,
        "sign-in guessing: 12 wrong passwords from address A, then the owner from B",
        "4x 401 then 429 (back-off after 3 free failures); the right password from B: 303, signed in",
        observed,
    )

    before = len([m for m in outbox_mails(outbox_path()) if m["to"].strip("<>") == email and m["subject"] == "Reset your password"])
    statuses = []
    for i in range(11):
        statuses.append(request_reset(portal, email, f"203.0.113.{60 + i}").status)
    mails = [m for m in outbox_mails(outbox_path()) if m["to"].strip("<>") == email and m["subject"] == "Reset your password"]
    sent = len(mails) - before
    observed = f"11 forgot-password requests from 11 addresses answered {sorted(set(statuses))}; reset mails written: {sent}"
    record(
        "e2",
        all(s == 303 for s in statuses) and sent <= 3,
        "mail bombing through forgot-password (11 requests, 11 addresses)",
        "the same answer (303 to the same page) each time; at most 3 reset mails per account per hour",
        observed,
    )


# ------------------------------------------------------ f. suspended operator


def cmd_suspend(args):
    portal = ENV["PORTAL"]
    ops2_email, ops2_password = args[0], args[1]
    b2, r2 = login(portal, ops2_email, ops2_password, "198.51.100.61")
    s2_login = f"{r2.status} -> {r2.location()}"
    before = b2.get("/keys").status
    op, r = login(portal, ENV["OPERATOR_EMAIL"], ENV["OPERATOR_PASSWORD"], "198.51.100.62")
    page = op.get("/admin/accounts")
    m = re.search(re.escape(ops2_email) + r".*?/admin/accounts/([0-9a-fA-F-]+)/suspend", page.body, re.S)
    if not m:
        return record("f", False, "suspended operator", "-", f"ops2 not found on /admin/accounts ({page.status})")
    acc = m.group(1)
    sr = op.post(f"/admin/accounts/{acc}/suspend", {}, page="/admin/accounts")
    after = b2.get("/keys")
    _, again = login(portal, ops2_email, ops2_password, "198.51.100.63")
    suspended_msg = "This account is suspended" in again.body
    observed = (
        f"ops2 signs in: {s2_login}, GET /keys {before}; operator suspends it: {sr.status} -> {sr.location()}; "
        f"ops2's session then: GET /keys {after.status} -> {after.location()}; signing in again: {again.status}, "
        f"'This account is suspended' {'shown' if suspended_msg else 'NOT shown'}"
    )
    ok = (
        r2.status == 303
        and before == 200
        and sr.status in (200, 303)
        and after.status == 303
        and after.location().endswith("/login")
        and again.status == 403
        and suspended_msg
    )
    record(
        "f",
        ok,
        "suspended operator keeps its session",
        "its session gets 303 to /login; signing in again 403 'This account is suspended'",
        observed,
    )


# ------------------------------------------------------------- g, h, i: API


def basic_auth_header(base_url):
    import base64

    u = urllib.parse.urlsplit(base_url)
    cred = base64.b64encode(f"{urllib.parse.unquote(u.username)}:{urllib.parse.unquote(u.password)}".encode()).decode()
    return ("Authorization", f"Basic {cred}")


def register(body=None, address=None):
    h = [basic_auth_header(ENV["BASE_URL"])]
    if address:
        h.append(("X-Forwarded-For", address))
    if body is not None:
        h.append(("Content-Type", "application/json"))
    r = request(ENV["HTTP"], "POST", "/register", h, json.dumps(body) if body is not None else None)
    if r.status != 201:
        raise RuntimeError(f"/register: {r.status} {r.body}")
    return json.loads(r.body)


def update(reg, key, xff, txt="A" * 43):
    h = [("X-Api-User", reg["username"]), ("X-Api-Key", key), ("Content-Type", "application/json")]
    h += [("X-Forwarded-For", v) for v in xff]
    return request(ENV["HTTP"], "POST", "/update", h, json.dumps({"subdomain": reg["subdomain"], "txt": txt}))


def cmd_register_txt(args):
    """Registers once and publishes a TXT value; prints the full domain."""
    reg = register()
    r = update(reg, reg["password"], [], "campaign-txt-value-0123456789abcdefghijklmno"[:43])
    if r.status != 200:
        raise RuntimeError(f"/update: {r.status} {r.body}")
    print(reg["fulldomain"])


def cmd_register_anon(args):
    address = "203.0.113.80"
    statuses = [request(ENV["HTTP"], "POST", "/register", [("X-Forwarded-For", address)]).status for _ in range(120)]
    n401 = statuses.count(401)
    first429 = statuses.index(429) + 1 if 429 in statuses else None
    h = [basic_auth_header(ENV["BASE_URL"]), ("X-Forwarded-For", address)]
    valid = request(ENV["HTTP"], "POST", "/register", h)
    observed = (
        f"120 anonymous POST /register from {address}: {n401}x 401, {statuses.count(429)}x 429 "
        f"(first 429 at request {first429}), others {len(statuses) - n401 - statuses.count(429)}; "
        f"then with the license key from the same address: {valid.status}"
    )
    ok = statuses[:20] == [401] * 20 and statuses[20:] == [429] * 100 and valid.status == 201
    record(
        "g",
        ok,
        "anonymous /register flood (120 from one address)",
        "401 until the unauthenticated budget (burst 20) is gone, then 429; the valid key from that address 201",
        observed,
    )


def cmd_update_fail(args):
    reg = register()
    address = "203.0.113.90"
    statuses = [update(reg, "x" * 40, [address]).status for _ in range(100)]
    n401, n429 = statuses.count(401), statuses.count(429)
    # The same address with the right key, while it is over its budget.
    right = update(reg, reg["password"], [address]).status
    # Wrong keys for 100 different (unknown) usernames: only the address budget counts.
    import uuid

    address2 = "203.0.113.91"
    st2 = []
    for _ in range(100):
        fake = {"username": str(uuid.uuid4()), "subdomain": reg["subdomain"]}
        st2.append(update(fake, "x" * 40, [address2]).status)
    observed = (
        f"100 /update with a wrong X-Api-Key for one real registration from {address}: {n401}x 401 then {n429}x 429 "
        f"(401 for requests 1-{statuses.index(429) if 429 in statuses else 100}); the right key from that address "
        f"afterwards: {right}; 100 wrong keys for 100 unknown usernames from {address2}: {st2.count(401)}x 401, "
        f"{st2.count(429)}x 429"
    )
    # Budgets: auth_failures_per_address burst 20, auth_failures_per_user burst 10.
    # One real username: the per-user budget answers first (10); many usernames: the address's (20).
    ok = (
        statuses[:10] == [401] * 10
        and statuses[10:] == [429] * 90
        and st2[:20] == [401] * 20
        and st2[20:] == [429] * 80
    )
    record(
        "h",
        ok,
        "failed /update authentication, 100 from one address",
        "401 until a failure budget is gone, then 429 before any work: per user (burst 10) for one username, "
        "per address (burst 20) across usernames [the brief said 20 for one username]",
        observed,
    )


def cmd_user_lockout(args):
    """Someone who knows a registration's username (not its key) spends that
    username's failure budget from ever-new addresses; how often does the owner's
    right key get through meanwhile?"""
    reg = register()
    stop = time.monotonic() + 10
    attacker_sent = [0]

    def attacker():
        i = 0
        while i < 10:  # use up the burst at once
            update(reg, "y" * 40, [f"203.0.113.{100 + i}"])
            i += 1
        while time.monotonic() < stop and i < 100:  # then five failures a second
            update(reg, "y" * 40, [f"203.0.113.{100 + i}"])
            i += 1
            time.sleep(0.2)
        attacker_sent[0] = i

    t = threading.Thread(target=attacker)
    t.start()
    time.sleep(0.5)
    owner = []
    while time.monotonic() < stop and len(owner) < 40:
        owner.append(update(reg, reg["password"], ["198.51.100.200"]).status)
        time.sleep(0.5)
    t.join()
    t_end = time.monotonic()
    recovered = None
    while time.monotonic() - t_end < 10:
        if update(reg, reg["password"], ["198.51.100.200"]).status == 200:
            recovered = time.monotonic() - t_end
            break
        time.sleep(0.1)
    observed = (
        f"attacker: {attacker_sent[0]} wrong keys for one username over 10 s, each from a new address; the owner's right "
        f"key every 0.5 s from its own address meanwhile: {owner.count(200)}x 200, {owner.count(429)}x 429 of "
        f"{len(owner)}; after the attacker stopped the owner got 200 after "
        + (f"{recovered:.1f} s" if recovered is not None else "more than 10 s")
    )
    record(
        "h2",
        None,
        "/update refused for a known username (residual risk)",
        "measured, not checked: while a username is over auth_failures_per_user (30/min, burst 10) every /update "
        "for it is refused, right key included",
        observed,
    )


def cmd_xff(args):
    reg = register({"allowfrom": ["10.0.0.0/8"]})
    key = reg["password"]
    cases = [
        ("two lines: '10.1.2.3' then '203.0.113.7'", ["10.1.2.3", "203.0.113.7"], 401),
        ("'10.1.2.3, 203.0.113.7:4711'", ["10.1.2.3, 203.0.113.7:4711"], 401),
        ("'10.1.2.3, [2001:db8::7]'", ["10.1.2.3, [2001:db8::7]"], 401),
        ("'10.1.2.3, unknown'", ["10.1.2.3, unknown"], 401),
        ("'203.0.113.7, 10.1.2.3'", ["203.0.113.7, 10.1.2.3"], 200),
    ]
    parts, ok = [], True
    for name, xff, want in cases:
        got = update(reg, key, xff).status
        ok &= got == want
        parts.append(f"{name}: {got}")
    record(
        "i",
        ok,
        "X-Forwarded-For tricks against allowfrom 10.0.0.0/8",
        "the four spoofing forms 401; '203.0.113.7, 10.1.2.3' (client 10.1.2.3 added by the trusted proxy) 200",
        "; ".join(parts),
    )


# ------------------------------------------------- l. sign-up, existing address


def cmd_signup_existing(args):
    portal = ENV["PORTAL"]
    existing = "victim@example.com"  # signed up in e
    fresh = f"newcomer-{os.getpid()}@example.com"
    before = len([m for m in outbox_mails(outbox_path()) if m["to"].strip("<>") == existing])
    b1, r1 = signup(portal, fresh, "newcomer-password-1", "198.51.100.71")
    b2, r2 = signup(portal, existing, "attacker-password-1", "198.51.100.72")
    notices = [
        m
        for m in outbox_mails(outbox_path())[-5:]
        if m["to"].strip("<>") == existing and m["subject"].startswith("Sign-up attempt")
    ]
    after = len([m for m in outbox_mails(outbox_path()) if m["to"].strip("<>") == existing])

    def norm(r, email):
        body = r.body.replace(email, "EMAIL")
        return re.sub(r'name="csrf" value="[^"]+"', 'name="csrf" value=""', body)

    same = r1.status == r2.status and norm(r1, fresh) == norm(r2, existing)
    cookies2 = [c.split("=", 1)[0] for c in r2.header("set-cookie")]
    observed = (
        f"new address: {r1.status}, existing address: {r2.status}; pages identical apart from the address: {same}; "
        f"cookies set for the existing address: {cookies2 or 'none'}; session: {'yes' if b2.session() else 'no'}; "
        f"mails to the owner: {after - before} ({len(notices)} 'Sign-up attempt' notice)"
    )
    ok = same and r2.status == 200 and b2.session() is None and len(notices) == 1
    record(
        "l",
        ok,
        "sign-up with an address that has an account",
        "the same page as for a new address, no session cookie, a notice mail to the owner",
        observed,
    )


# --------------------------------------------------------------------- main

COMMANDS = {
    "reset-flood": cmd_reset_flood,
    "login-flood": cmd_login_flood,
    "slowloris": cmd_slowloris,
    "stall": cmd_stall,
    "reset": cmd_reset,
    "use-reset": cmd_use_reset,
    "secrets": cmd_secrets,
    "lockout": cmd_lockout,
    "suspend": cmd_suspend,
    "register-txt": cmd_register_txt,
    "register-anon": cmd_register_anon,
    "update-fail": cmd_update_fail,
    "user-lockout": cmd_user_lockout,
    "xff": cmd_xff,
    "signup-existing": cmd_signup_existing,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(COMMANDS)}}} [args]")
    COMMANDS[sys.argv[1]](sys.argv[2:])
