#!/usr/bin/env python3
"""Malformed API requests: each must be answered with a clear JSON error, never a 5xx, never a
panic in the log, and the server keeps serving.

The requests are built from fixed families (broken HTTP framing, oversized request lines and
headers, bad or repeated Authorization and Idempotency-Key headers, unknown methods and routes,
bad path and query parameters, broken, mistyped and hostile JSON bodies on every route that takes
one, observation items that must be rejected item by item) and then seeded random mutations of a
valid observation batch, until --count requests have been sent. "A clear JSON error" means a 4xx
status and the body `{"error": {"code": "...", "message": "..."}}` with both non-empty; an
observation batch that is itself well formed is answered 200 and then every bad item must come
back `rejected` with at least one problem code.
"""

import json
import random

from common import (US_CAMPAIGN, Daemon, Deployment, Result, healthy, iso_day, main_wrapper,
                    observation, raw_request, request, wait_for_arms)

CAMPAIGN = US_CAMPAIGN[0]


def configure(parser):
    parser.add_argument("--count", type=int, default=320,
                        help="requests to send in all (default 320; at least the fixed families)")


class Case:
    """One request and what a correct answer is: `error` (4xx + JSON error body) or `rejected`
    (200, every item of the batch rejected with a problem code)."""

    def __init__(self, name, raw=None, method="GET", path="/", token="op", body=None,
                 headers=None, expect="error"):
        self.name = name
        self.raw = raw
        self.method = method
        self.path = path
        self.token = token
        self.body = body
        self.headers = headers or []
        self.expect = expect

    def encode(self, dep):
        if self.raw is not None:
            return self.raw.replace(b"{PORT}", str(dep.port).encode())
        token = {"op": dep.operator, "tenant": dep.tenants["globex"], None: None}.get(self.token, self.token)
        body = self.body
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: 127.0.0.1:{dep.port}",
                 "Connection: close"]
        names = {h[0].lower() for h in self.headers}
        if token is not None and "authorization" not in names:
            lines.append(f"Authorization: Bearer {token}")
        for name, value in self.headers:
            value = value.replace("{op}", dep.operator).replace("{tenant}", dep.tenants["globex"])
            lines.append(f"{name}: {value}")
        if body is not None:
            if "content-type" not in names:
                lines.append("Content-Type: application/json")
            if "content-length" not in names and "transfer-encoding" not in names:
                lines.append(f"Content-Length: {len(body)}")
        head = "\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n\r\n"
        return head + (body or b"")

    def repro(self, dep, data):
        body = self.body
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        if self.raw is None and (body is None or (len(body) <= 600 and b"'" not in body)):
            try:
                text = body.decode("utf-8") if body is not None else None
            except UnicodeDecodeError:
                text = False
            if text is not False:
                parts = [f"curl -s -X {self.method}"]
                if self.token == "op":
                    parts.append("-H 'Authorization: Bearer $OPERATOR_TOKEN'")
                for name, value in self.headers:
                    value = value.replace("{op}", "$OPERATOR_TOKEN").replace("{tenant}", "$TENANT_TOKEN")
                    parts.append(f"-H {json.dumps(name + ': ' + value)}")
                if text is not None:
                    parts.append("-H 'Content-Type: application/json'")
                    parts.append(f"--data-binary '{text}'")
                parts.append(f"\"$API{self.path}\"")
                return " ".join(parts)
        shown = data if len(data) <= 240 else data[:200] + b"...(" + str(len(data)).encode() + b" bytes)"
        text = repr(shown)[2:-1].replace(dep.operator, "$OPERATOR_TOKEN").replace(dep.tenants["globex"], "$TENANT_TOKEN")
        return f"printf '{text}' | nc 127.0.0.1 PORT"


def batch(items, day=1, campaign=CAMPAIGN):
    return {"campaign": campaign, "day": day, "observations": items}


def fixed_cases(arm):
    """The families every run sends."""
    cases = []
    good = observation(arm, 1)

    def obs(**changes):
        item = dict(good)
        for k, v in changes.items():
            if v is DROP:
                item.pop(k, None)
            else:
                item[k] = v
        return item

    # HTTP framing.
    framing = [
        ("not HTTP at all", b"hello\r\n\r\n"),
        ("binary garbage", bytes(range(256)) + b"\r\n\r\n"),
        ("request line without version", b"GET /healthz\r\n\r\n"),
        ("unknown HTTP version", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"),
        ("header without colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"),
        ("space before colon", b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n"),
        ("NUL in header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
        ("negative content-length", b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
        ("non-numeric content-length", b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
        ("two different content-lengths", b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
        ("content-length and chunked", b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}"),
        ("bad chunk size", b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n"),
        ("unknown transfer-encoding", b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}"),
        ("request line of 70 kB", b"GET /v1/campaigns?" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("path of 20 kB", b"GET /v1/campaigns/" + b"x" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("one header of 500 kB", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 500000 + b"\r\n\r\n"),
        ("200 headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n"),
        ("asterisk URI", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("non-ASCII path bytes", b"GET /v1/campaigns/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("obsolete line folding", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
    ]
    for name, raw in framing:
        cases.append(Case(f"framing: {name}", raw=raw))

    # Authentication headers.
    for name, value in [
        ("Basic scheme", "Basic b3A6b3A="), ("no scheme", "{op}"), ("Bearer without token", "Bearer"),
        ("Bearer and a space", "Bearer "), ("two tokens", "Bearer {op} {op}"),
        ("wrong token", "Bearer " + "x" * 32), ("token of 10 kB", "Bearer " + "y" * 10000),
        ("non-ASCII token", "Bearer t\u00f6ken-\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"),
        ("control byte in token", "Bearer abc\x01def"),
    ]:
        cases.append(Case(f"auth: {name}", path="/v1/campaigns", token=None,
                          headers=[("Authorization", value)]))
    cases.append(Case("auth: none on /v1/agents", path="/v1/agents", token=None))
    cases.append(Case("auth: repeated Authorization header", path="/v1/agents", token=None,
                      headers=[("Authorization", "Bearer {op}"), ("Authorization", "Bearer {tenant}")]))
    cases.append(Case("auth: repeated Authorization, first wrong", path="/v1/agents", token=None,
                      headers=[("Authorization", "Bearer wrong-wrong-wrong-wrong"), ("Authorization", "Bearer {op}")]))

    # Methods and routes.
    for method, path in [("PUT", "/v1/campaigns"), ("DELETE", "/v1/agents"), ("PATCH", "/v1/reload"),
                         ("GET", "/v1/reload"), ("GET", "/v1/observations"), ("POST", "/healthz"),
                         ("FOO", "/v1/campaigns"), ("GET", "/v2/campaigns"), ("GET", "/v1/"),
                         ("GET", "/v1/campaigns/" + CAMPAIGN + "/nothing"), ("GET", "/%2e%2e/etc/passwd"),
                         ("GET", "/v1/campaigns/" + CAMPAIGN + "/commands")]:
        cases.append(Case(f"route: {method} {path}", method=method, path=path))

    # Path parameters.
    for cid in ["no_such", "%00", "..%2f..%2fetc", "a%2Fb", "%E2%80%AE", "x" * 300, "%ZZ", "%",
                CAMPAIGN.upper(), CAMPAIGN + "%20"]:
        cases.append(Case(f"path: campaign {cid[:20]}", path=f"/v1/campaigns/{cid}"))
        cases.append(Case(f"path: decisions of {cid[:20]}", path=f"/v1/campaigns/{cid}/decisions"))
    for tid in ["not-a-uuid", "00000000-0000-0000-0000-00000000000g", "%00", "1" * 100, "{}",
                "00000000-0000-0000-0000-000000000000"]:
        expect = "error"
        cases.append(Case(f"path: trace {tid[:20]}", path=f"/v1/traces/{tid}", expect=expect))

    # Query parameters.
    dpath = f"/v1/campaigns/{CAMPAIGN}/decisions"
    for query in ["limit=0", "limit=-1", "limit=1001", "limit=abc", "limit=99999999999999999999999",
                  "limit=1.5", "limit=", "cursor=garbage", "cursor=" + "A" * 5000, "cursor=%ZZ",
                  "from=yesterday", "to=2026-13-45T00:00:00Z", "from=+275760-09-13T00:00:00Z",
                  "unknown=1", "limit=%F0%28%8C%BC", "limit"]:
        cases.append(Case(f"query: decisions?{query[:40]}", path=f"{dpath}?{query}"))
    # Not clearly wrong: only no 5xx, and a JSON body if refused.
    for query in ["from=2026-09-02T00:00:00Z&to=2026-09-01T00:00:00Z", "limit=5&limit=6", "agent=",
                  "agent=../../etc", "agent=%00", "&&&", "="]:
        cases.append(Case(f"query: decisions?{query[:40]}", path=f"{dpath}?{query}", expect="any"))
    for path in ["/v1/campaigns?unknown=1", "/v1/agents?x=1", f"/v1/campaigns/{CAMPAIGN}?x=1",
                 "/healthz?x=%ZZ"]:
        cases.append(Case(f"query: {path}", path=path))

    # Bodies of commands and reload.
    cpath = f"/v1/campaigns/{CAMPAIGN}/commands"
    bodies = [
        ("empty", b""), ("whitespace", b"   \n"), ("not JSON", b"pause"), ("truncated", b'{"command": "pa'),
        ("array", b"[]"), ("number", b"42"), ("null", b"null"), ("string", b'"pause"'),
        ("unknown command", {"command": "explode"}), ("command is a number", {"command": 1}),
        ("reason is an object", {"command": "pause", "reason": {"a": 1}}),
        ("unknown field", {"command": "pause", "extra": True}),
        ("duplicate key", b'{"command": "pause", "command": "resume"}'),
        ("invalid UTF-8", b'{"command": "\xff\xfe"}'), ("lone surrogate", b'{"command": "\\ud800"}'),
        ("deep nesting", b'{"command": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        ("BOM", b'\xef\xbb\xbf{"command": "pause"}'), ("trailing garbage", b'{"command": "pause"} x'),
        ("NaN", b'{"command": NaN}'), ("reason of 2 MB", {"command": "pause", "reason": "r" * (2 << 20)}),
    ]
    for name, body in bodies:
        cases.append(Case(f"commands body: {name}", method="POST", path=cpath, body=body))
    for name, body in [("not JSON", b"dry"), ("dry_run a string", {"dry_run": "yes"}),
                       ("unknown field", {"dry_run": True, "force": True}), ("array", b"[true]"),
                       ("deep nesting", b"[" * 5000 + b"]" * 5000), ("body of 2 MB", b" " * (2 << 20) + b"{}")]:
        cases.append(Case(f"reload body: {name}", method="POST", path="/v1/reload", body=body))

    # Observation batches that are wrong as a whole.
    opath = "/v1/observations"
    for name, body in [
        ("empty", b""), ("not JSON", b"observations"), ("truncated", json.dumps(batch([good])).encode()[:-3]),
        ("array", json.dumps([batch([good])]).encode()), ("no campaign", {"day": 1, "observations": [good]}),
        ("no day", {"campaign": CAMPAIGN, "observations": [good]}), ("no observations", {"campaign": CAMPAIGN, "day": 1}),
        ("empty observations", batch([])), ("observations an object", {"campaign": CAMPAIGN, "day": 1, "observations": {}}),
        ("day negative", batch([good], day=-1)), ("day a float", batch([good], day=1.5)),
        ("day 2^32", batch([good], day=2 ** 32)), ("day a string", batch([good], day="1")),
        ("day 10^30", b'{"campaign": "%s", "day": 1000000000000000000000000000000, "observations": [{}]}' % CAMPAIGN.encode()),
        ("campaign a number", {"campaign": 5, "day": 1, "observations": [good]}),
        ("campaign unknown", batch([good], campaign="no_such_campaign")),
        ("campaign empty", batch([good], campaign="")), ("unknown batch field", dict(batch([good]), extra=1)),
        ("duplicate batch key", b'{"campaign": "%s", "campaign": "x", "day": 1, "observations": [{}]}' % CAMPAIGN.encode()),
        ("invalid UTF-8", b'{"campaign": "\xc3\x28", "day": 1, "observations": [{}]}'),
        ("deep nesting in an item", b'{"campaign": "%s", "day": 1, "observations": [%s]}' % (CAMPAIGN.encode(), b"[" * 3000 + b"]" * 3000)),
        ("2 MB body", batch([dict(good, variant="v" * (2 << 20))])),
    ]:
        cases.append(Case(f"observations batch: {name}", method="POST", path=opath, body=body))
    cases.append(Case("observations batch: day after the deadline", method="POST", path=opath,
                      body=batch([good], day=100000), expect="rejected"))
    for name, value in [("empty", ""), ("201 characters", "k" * 201), ("non-ASCII", "kl\u00e9"),
                        ("control byte", "k\x07k"), ("space inside", "a b")]:
        cases.append(Case(f"idempotency key: {name}", method="POST", path=opath,
                          body=batch([obs(impressions=-1)]), headers=[("Idempotency-Key", value)]))
    cases.append(Case("idempotency key: repeated header", method="POST", path=opath,
                      body=batch([obs(impressions=-1)]),
                      headers=[("Idempotency-Key", "first-key-1"), ("Idempotency-Key", "second-key-2")]))

    # Observation items that must each be rejected (the batch itself is well formed). Each has a
    # day of its own, so an item wrongly recorded cannot turn the next one into a duplicate.
    def at(day, **changes):
        base = {"window_start": iso_day(day), "window_end": iso_day(day + 1)}
        base.update(changes)
        return obs(**base)

    items = [
        ("impressions negative", dict(impressions=-1)), ("clicks above impressions", dict(clicks=5000)),
        ("conversions above clicks", dict(conversions=41)), ("spend negative", dict(spend=-0.01)),
        ("spend 1e308", dict(spend=1e308)), ("revenue 1e308", dict(revenue=1e308)),
        ("counts 2^63-1", dict(impressions=2 ** 63 - 1, clicks=2 ** 63 - 1, conversions=2 ** 63 - 1)),
        ("impressions 2^64", dict(impressions=2 ** 64)), ("impressions a float", dict(impressions=10.5)),
        ("impressions a string", dict(impressions="1000")), ("spend a string", dict(spend="1")),
        ("spend null", dict(spend=None)), ("channel unknown", dict(channel="carrier_pigeon")),
        ("channel not the variant's", dict(channel="display")), ("segment not the variant's", dict(segment="nobody")),
        ("variant unknown", dict(variant="v-that-never-was")), ("variant empty", dict(variant="")),
        ("variant missing", dict(variant=DROP)), ("window_start missing", dict(window_start=DROP)),
        ("window not a time", dict(window_start="yesterday")),
        ("window without offset", dict(window_start="2026-09-02T00:00:00")),
        ("window ends before start", dict(window_start=iso_day(2), window_end=iso_day(1))),
        ("window far outside the campaign", dict(window_start=iso_day(5000), window_end=iso_day(5001))),
        ("window disagrees with the day", dict(window_start=iso_day(3), window_end=iso_day(4))),
        ("window before the campaign", dict(window_start="1970-01-01T00:00:00Z", window_end="1970-01-02T00:00:00Z")),
        ("unknown item field", dict(bonus=1)), ("item campaign another", dict(campaign="acme_us")),
    ]
    for n, (name, changes) in enumerate(items):
        day = 400 + n
        cases.append(Case(f"observation item: {name}", method="POST", path=opath,
                          body=batch([at(day, **changes)], day=day), expect="rejected"))
    for n, (name, item) in enumerate([("item a string", "impressions=5"), ("item null", None),
                                      ("item an array", [1, 2, 3])]):
        cases.append(Case(f"observation item: {name}", method="POST", path=opath,
                          body=batch([item], day=450 + n), expect="rejected"))
    return cases


DROP = object()


def random_cases(arm, rng, count):
    """Seeded mutations of a valid batch: a field dropped, retyped or set to an extreme value, or
    the bytes cut, flipped or duplicated. Each must be refused as a whole or item by item; one
    that happens to stay valid is sent for a day of its own and only checked for no 5xx."""
    good = observation(arm, 1)
    extremes = [None, True, -1, 0, 2 ** 63, -2 ** 63, 1e308, -1e308, "", "x" * 1000, [], {}, "NaN",
                "\u0000", 1.5, "2026-02-30T00:00:00Z"]
    cases = []
    for i in range(count):
        day = 10 + i
        item = dict(good, window_start=iso_day(day), window_end=iso_day(day + 1))
        kind = rng.randrange(4)
        if kind == 0:
            field = rng.choice(list(item))
            item[field] = rng.choice(extremes)
            body = json.dumps(batch([item], day=day), allow_nan=True).encode()
            expect = "any"
            name = f"random item field {field}={json.dumps(item[field])[:30]}"
        elif kind == 1:
            field = rng.choice(list(item))
            item.pop(field)
            body = json.dumps(batch([item], day=day)).encode()
            expect = "any"
            name = f"random item without {field}"
        elif kind == 2:
            raw = bytearray(json.dumps(batch([item], day=day)).encode())
            for _ in range(rng.randint(1, 4)):
                raw[rng.randrange(len(raw))] = rng.choice(b'{}[]",:\\\x00\xff0-e')
            body = bytes(raw)
            expect = "any"
            name = "random bytes flipped"
        else:
            raw = json.dumps(batch([item], day=day)).encode()
            cut = rng.randrange(1, len(raw))
            body = raw[:cut]
            expect = "error"
            name = f"random body cut at {cut}"
        cases.append(Case(name, method="POST", path="/v1/observations", body=body, expect=expect))
    return cases


def judge(case, response):
    """None if the answer is right, else what is wrong."""
    if response is None:
        return "the connection closed without an answer"
    if response.status >= 500 or response.status == 0:
        return f"answered {response.status}: {response.text()[:160]}"
    if case.expect == "any":
        if response.status >= 400 and not response.error_code():
            return f"answered {response.status} without a JSON error body: {response.text()[:120]!r}"
        data = response.json() if response.status == 200 else None
        for item in (data or {}).get("items", []) if isinstance(data, dict) else []:
            if item.get("status") == "rejected" and not item.get("problems"):
                return f"an item rejected without a problem: {item}"
        return None
    if case.expect == "rejected":
        if response.status != 200:
            if 400 <= response.status < 500 and response.error_code():
                return None  # refused as a whole, with a clear error: fine too
            return f"answered {response.status}: {response.text()[:160]}"
        data = response.json() or {}
        items = data.get("items", [])
        bad = [i for i in items if i.get("status") != "rejected" or not i.get("problems")]
        if not items or bad:
            return f"not rejected: {json.dumps(bad or data)[:200]}"
        return None
    if not 400 <= response.status < 500:
        return f"answered {response.status} (expected a 4xx error): {response.text()[:160]}"
    if not response.error_code():
        return f"answered {response.status} without a JSON error body: {response.text()[:120]!r}"
    return None


def run(args):
    """Malformed API requests."""
    result = Result("malformed")
    rng = random.Random(args.seed)
    dep = Deployment("malformed", campaigns=(US_CAMPAIGN, ("acme_us", "acme", ["social"], ["US"], ["everyone"])),
                     source="api", keep=args.keep)
    daemon = Daemon(args.bin, dep)
    try:
        if not daemon.wait_ready(120):
            result.fail(f"the daemon never answered /healthz: {daemon.text()[-300:]}")
            return result
        arms = wait_for_arms(dep.port, dep.operator, CAMPAIGN, within=120)
        if not arms:
            result.fail("the campaign never decided an experiment")
            return result
        arm = arms[0]
        cases = fixed_cases(arm)
        cases += random_cases(arm, rng, max(0, args.count - len(cases)))
        for n, case in enumerate(cases):
            data = case.encode(dep)
            try:
                response = raw_request(dep.port, data, timeout=30)
            except OSError as e:
                response = None
                if not daemon.running():
                    result.attempt(False, f"{case.name}: the daemon died ({e}); {case.repro(dep, data)}")
                    break
            wrong = judge(case, response)
            result.attempt(wrong is None, f"{case.name}: {wrong}; repro: {case.repro(dep, data)}")
            if n % 25 == 24 and not healthy(dep.port):
                result.fail(f"after {case.name}: /healthz no longer answers")
        if not healthy(dep.port):
            result.fail("after the attack /healthz no longer answers")
        normal = request(dep.port, "GET", "/v1/campaigns", token=dep.operator)
        if normal.status != 200:
            result.fail(f"after the attack GET /v1/campaigns answered {normal.status}")
        for line in daemon.panics()[:5]:
            result.fail(f"panic in the daemon log: {line[:300]}")
        result.note(f"{len(cases)} requests on {len({c.path.split('?')[0] for c in cases})} paths")
        return result
    finally:
        daemon.stop()
        dep.cleanup()


if __name__ == "__main__":
    main_wrapper("malformed", run, configure)
