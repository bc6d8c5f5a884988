#!/usr/bin/env python3
"""A slow-connection flood under a low file limit: with the daemon started under
`prlimit --nofile=128`, idle connections and half-sent requests held open must not lock the API
out (it still answers /healthz and a normal read and write), and SIGTERM still finishes within
`daemon.shutdown_timeout_secs` with them open.

Round one opens --idle connections that send nothing; round two adds --slow requests that send
their headers or body a byte at a time, slower than any sane timeout. After each round /healthz,
`GET /v1/campaigns` and an observation batch must be answered within --answer-within seconds,
and /readyz must answer (200, or 503 with a reason). Then SIGTERM: the daemon must exit 0 within
the shutdown bound plus --slack seconds, with every connection still held open. Last, a fresh
start with only the half-sent requests (all accepted, under the limit): SIGTERM must finish
before the shutdown bound instead of waiting for them until it.
"""

import socket
import threading
import time

from common import (US_CAMPAIGN, Daemon, Deployment, Result, main_wrapper, observation, request,
                    wait_for_arms)

CAMPAIGN = US_CAMPAIGN[0]


def configure(parser):
    parser.add_argument("--nofile", type=int, default=128, help="the daemon's file limit (default 128)")
    parser.add_argument("--idle", type=int, default=200, help="idle connections (default 200)")
    parser.add_argument("--slow", type=int, default=50, help="half-sent requests (default 50)")
    parser.add_argument("--shutdown-timeout", type=int, default=10,
                        help="daemon.shutdown_timeout_secs of the deployment (default 10)")
    parser.add_argument("--slack", type=float, default=3.0,
                        help="seconds past the shutdown bound SIGTERM may take (default 3)")
    parser.add_argument("--answer-within", type=float, default=10.0,
                        help="seconds a probe may take under the flood (default 10)")
    parser.add_argument("--hold", type=float, default=5.0,
                        help="seconds the flood is held before probing (default 5)")


class Flood:
    def __init__(self, port):
        self.port = port
        self.socks = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.refused = 0

    def idle(self, n):
        for _ in range(n):
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                with self.lock:
                    self.socks.append(s)
            except OSError:
                self.refused += 1

    def slow(self, n):
        """Half the requests stop inside the headers, half inside a declared body; each then
        trickles one byte a second."""
        for i in range(n):
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            except OSError:
                self.refused += 1
                continue
            if i % 2 == 0:
                head = b"GET /v1/campaigns HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
            else:
                head = (b"POST /v1/observations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
            try:
                s.sendall(head)
            except OSError:
                pass
            with self.lock:
                self.socks.append((s, i % 2 == 0))
        threading.Thread(target=self.trickle, daemon=True).start()

    def trickle(self):
        while not self.stop.wait(1.0):
            with self.lock:
                socks = list(self.socks)
            for entry in socks:
                if isinstance(entry, tuple):
                    s, in_headers = entry
                    try:
                        s.send(b"a" if in_headers else b" ")
                    except OSError:
                        pass

    def close(self):
        self.stop.set()
        with self.lock:
            for entry in self.socks:
                s = entry[0] if isinstance(entry, tuple) else entry
                try:
                    s.close()
                except OSError:
                    pass
            self.socks = []


def probe(result, dep, arm, day, label, within):
    port = dep.port
    checks = [
        ("GET /healthz", lambda: request(port, "GET", "/healthz", timeout=within), (200,)),
        ("GET /readyz", lambda: request(port, "GET", "/readyz", timeout=within), (200, 503)),
        ("GET /v1/campaigns", lambda: request(port, "GET", "/v1/campaigns", token=dep.operator, timeout=within), (200,)),
        ("POST /v1/observations", lambda: request(
            port, "POST", "/v1/observations", token=dep.tenants["globex"], timeout=within,
            body={"campaign": CAMPAIGN, "day": day, "observations": [observation(arm, day)]}), (200,)),
    ]
    for name, call, ok in checks:
        started = time.monotonic()
        try:
            r = call()
            status = r.status
            detail = r.text()[:120]
        except OSError as e:
            status, detail = None, str(e)
        took = time.monotonic() - started
        result.attempt(status in ok, f"{label}: {name} answered {status} after {took:.1f} s ({detail}); "
                                     f"repro: scripts/attack/slowflood.py (daemon under prlimit --nofile)")


def run(args):
    """A slow-connection flood under a low file limit."""
    result = Result("slowflood")
    dep = Deployment("slowflood", campaigns=(US_CAMPAIGN,), source="api",
                     shutdown_timeout=args.shutdown_timeout, keep=args.keep)
    daemon = Daemon(args.bin, dep, limit_nofile=args.nofile)
    flood = Flood(dep.port)
    try:
        if not daemon.wait_ready(120):
            result.fail(f"the daemon never answered /healthz under prlimit --nofile={args.nofile}: "
                        f"{daemon.text()[-300:]}")
            return result
        arms = wait_for_arms(dep.port, dep.operator, CAMPAIGN, within=120)
        if not arms:
            result.fail("the campaign never decided an experiment")
            return result
        probe(result, dep, arms[0], 1, "before the flood", args.answer_within)
        flood.idle(args.idle)
        time.sleep(args.hold)
        probe(result, dep, arms[0], 2, f"{args.idle} idle connections, --nofile={args.nofile}", args.answer_within)
        flood.slow(args.slow)
        time.sleep(args.hold)
        probe(result, dep, arms[0], 3, f"{args.idle} idle and {args.slow} half-sent requests", args.answer_within)
        result.attempt(daemon.running(), "the daemon exited under the flood: " + daemon.text()[-300:])
        bound = args.shutdown_timeout + args.slack
        code, took = daemon.terminate(bound)
        result.attempt(code is not None, f"SIGTERM with {args.idle + args.slow} connections open: still "
                                         f"running after {bound:.0f} s (shutdown_timeout_secs = "
                                         f"{args.shutdown_timeout}); killed")
        result.attempt(code in (0, None), f"SIGTERM under the flood: exit {code}")
        result.note(f"SIGTERM took {took:.1f} s (bound {bound:.0f} s); {flood.refused} flood connections refused")
        for line in daemon.panics()[:5]:
            result.fail(f"panic in the daemon log: {line[:300]}")
        flood.close()
        half_sent_shutdown(args, dep, result)
        return result
    finally:
        flood.close()
        daemon.stop()
        dep.cleanup()


def half_sent_shutdown(args, dep, result):
    """A fresh start with only --slow half-sent requests (fewer than the file limit, so the server
    accepted every one): SIGTERM must not wait for them until the shutdown bound."""
    daemon = Daemon(args.bin, dep, limit_nofile=args.nofile)
    flood = Flood(dep.port)
    try:
        if not daemon.wait_ready(120):
            result.fail(f"the restart never answered /healthz: {daemon.text()[-300:]}")
            return
        flood.slow(args.slow)
        time.sleep(2.0)
        bound = args.shutdown_timeout + args.slack
        code, took = daemon.terminate(bound)
        result.attempt(code == 0 and took < args.shutdown_timeout,
                       f"SIGTERM with {args.slow} half-sent requests open took {took:.1f} s, exit {code} "
                       f"(shutdown_timeout_secs = {args.shutdown_timeout}: the requests held the drain "
                       f"to its bound); repro: scripts/attack/slowflood.py --idle 0")
        result.note(f"SIGTERM with {args.slow} half-sent requests took {took:.1f} s")
        for line in daemon.panics()[:5]:
            result.fail(f"panic in the daemon log: {line[:300]}")
    finally:
        flood.close()
        daemon.stop()


if __name__ == "__main__":
    main_wrapper("slowflood", run, configure)
