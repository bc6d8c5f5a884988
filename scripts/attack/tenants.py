#!/usr/bin/env python3
"""Tenant attempts on every route: a tenant token never reads or writes another tenant's data,
and operator-only routes refuse tenants.

Three tenants run one campaign each: the organization `acme` (campaign acme_us), its client
`acme/kr_retail` (kr_retail_search) and `globex` (globex_us). `acme` may read its client's
campaign; the client may not read acme's own; neither may read globex's, nor globex theirs. The
routes come from the running daemon's own `/v1/openapi.json`, so a route added later is attacked
too: every path parameter is filled with each campaign's id, correlation ids and agent names, and
every route but the documented tenant routes must answer 403 `operator_only` to a tenant token. A
campaign or trace the tenant may not see must answer exactly like one that does not exist, and
no answer to a tenant may contain an id (campaign, correlation, decision or outcome) of a
campaign it may not see. Also tried: path spellings of another tenant's campaign, an item that
names another tenant's campaign inside an own batch, another tenant's Idempotency-Key, and an
operator's decisions cursor handed to a tenant.
"""

import json
import re
import uuid

from common import (ACME_CAMPAIGN, KR_CAMPAIGN, US_CAMPAIGN, Daemon, Deployment, Result,
                    main_wrapper, observation, request, wait_for_arms)

# Routes a tenant token may use (on what it may see); every other /v1 route is operator-only.
TENANT_ROUTES = {
    ("GET", "/v1/campaigns"), ("GET", "/v1/campaigns/{id}"), ("POST", "/v1/observations"),
    ("GET", "/v1/campaigns/{id}/decisions"), ("GET", "/v1/traces/{correlation_id}"),
    ("GET", "/v1/openapi.json"),
}
UNAUTHENTICATED = {"/healthz", "/readyz", "/metrics"}


def configure(parser):
    pass


def visible(tenant, owner):
    return owner == tenant or owner.startswith(tenant + "/")


class World:
    """What each campaign holds, read with the operator token."""

    def __init__(self, dep):
        self.dep = dep
        self.arms = {}
        self.ids = {}  # campaign -> set of ids that belong to it alone
        self.correlations = {}
        self.next_day = 0

    def day(self):
        self.next_day += 1
        return self.next_day

    def collect(self):
        port, op = self.dep.port, self.dep.operator
        for cid in self.dep.campaigns:
            ids = {cid}
            r = request(port, "GET", f"/v1/campaigns/{cid}/decisions?limit=1000", token=op)
            page = r.json() or {}
            corr = set()
            for d in page.get("decisions", []):
                ids.add(d.get("id"))
                corr.add(d.get("correlation_id"))
            for c in list(corr):
                t = request(port, "GET", f"/v1/traces/{c}", token=op).json() or {}
                for o in t.get("outcomes", []):
                    ids.add(o.get("id"))
            ids.update(corr)
            self.ids[cid] = {i for i in ids if i}
            self.correlations[cid] = sorted(c for c in corr if c)


def run(args):
    """Tenant attempts on every route."""
    result = Result("tenants")
    dep = Deployment("tenants", campaigns=(US_CAMPAIGN, KR_CAMPAIGN, ACME_CAMPAIGN), source="api",
                     keep=args.keep)
    daemon = Daemon(args.bin, dep)
    world = World(dep)
    try:
        if not daemon.wait_ready(120):
            result.fail(f"the daemon never answered /healthz: {daemon.text()[-300:]}")
            return result
        for cid in dep.campaigns:
            world.arms[cid] = wait_for_arms(dep.port, dep.operator, cid, within=120)
            if not world.arms[cid]:
                result.fail(f"campaign {cid} never decided an experiment")
                return result
            body = {"campaign": cid, "day": world.day(),
                    "observations": [observation(world.arms[cid][0], world.next_day)]}
            request(dep.port, "POST", "/v1/observations", token=dep.operator, body=body)
        world.collect()
        doc = request(dep.port, "GET", "/v1/openapi.json", token=dep.operator).json() or {}
        routes = []
        for path, item in sorted((doc.get("paths") or {}).items()):
            for method in ("get", "post", "put", "delete", "patch"):
                if method in item:
                    routes.append((method.upper(), path))
        if len(routes) < 10:
            result.fail(f"the OpenAPI document lists only {len(routes)} routes")
        result.note(f"{len(routes)} routes from /v1/openapi.json")
        for tenant, token in sorted(dep.tenants.items()):
            for method, path in routes:
                if path in UNAUTHENTICATED:
                    continue
                for filled, target in fill(path, world):
                    attack(result, dep, world, tenant, token, method, path, filled, target)
            tricks(result, dep, world, tenant, token)
        for line in daemon.panics()[:5]:
            result.fail(f"panic in the daemon log: {line[:300]}")
        return result
    finally:
        daemon.stop()
        dep.cleanup()


def fill(path, world):
    """The path with its parameters filled in, each with the campaign it points at (None: no
    campaign, or one that does not exist)."""
    params = re.findall(r"\{(\w+)\}", path)
    if not params:
        return [(path, None)]
    out = []
    name = params[0]
    if name == "id" or "campaign" in name:
        for cid in world.dep.campaigns:
            out.append((path.replace("{" + name + "}", cid), cid))
        out.append((path.replace("{" + name + "}", "no_such_campaign"), "missing"))
    elif "correlation" in name or name.endswith("trace"):
        for cid, corrs in world.correlations.items():
            for c in corrs[:2]:
                out.append((path.replace("{" + name + "}", c), cid))
        out.append((path.replace("{" + name + "}", str(uuid.uuid4())), "missing"))
    else:
        for value in ("compliance", "orchestrator"):
            out.append((re.sub(r"\{\w+\}", value, path), None))
    return [(re.sub(r"\{\w+\}", "x", p), t) for p, t in out]


def body_for(method, path, world, target, tenant):
    if method != "POST":
        return None
    if path.endswith("/commands"):
        return {"command": "pause", "reason": f"tenant attack by {tenant}"}
    if path == "/v1/observations":
        cid = target or next(iter(world.dep.campaigns))
        return None  # sent per campaign in attack()
    if path == "/v1/reload":
        return {"dry_run": True}
    return {"reason": f"tenant attack by {tenant}"}


def leaks(body, world, tenant, sent=""):
    """Ids of campaigns the tenant may not see in an answer, leaving out those the request itself
    carried (an error message may name what was asked for)."""
    text = body.decode("utf-8", "replace")
    found = []
    for cid, owner in world.dep.campaigns.items():
        if visible(tenant, owner):
            continue
        for i in world.ids.get(cid, ()):
            if i in text and i not in sent:
                found.append(f"{i} of {cid}")
                break
    return found


def attack(result, dep, world, tenant, token, method, template, path, target):
    port = dep.port
    if template == "/v1/observations":
        # One batch per campaign: allowed on the tenant's own, 404 on any other.
        for cid, owner in dep.campaigns.items():
            day = world.day()
            body = {"campaign": cid, "day": day, "observations": [observation(world.arms[cid][0], day)]}
            r = request(port, "POST", path, token=token, body=body)
            ok_status = 200 if visible(tenant, owner) else 404
            what = f"{tenant} POST /v1/observations for {cid}"
            result.attempt(r.status == ok_status and not leaks(r.body, world, tenant, json.dumps(body)),
                           f"{what}: answered {r.status} (expected {ok_status}) {r.text()[:160]}; repro: "
                           f"curl -X POST -H 'Authorization: Bearer $TENANT_TOKEN' -d '{json.dumps(body)[:80]}...' $API{path}")
        return
    body = body_for(method, template, world, target, tenant)
    r = request(port, method, path, token=token, body=body)
    what = f"{tenant} {method} {path}"
    repro = f"curl -X {method} -H 'Authorization: Bearer <{tenant} token>' $API{path}"
    leaked = leaks(r.body, world, tenant, path + json.dumps(body))
    if leaked:
        result.attempt(False, f"{what}: CROSS-TENANT READ of {', '.join(leaked[:3])}; repro: {repro}")
        return
    if (method, template) not in TENANT_ROUTES:
        result.attempt(r.status == 403 and r.error_code() == "operator_only",
                       f"{what}: an operator-only route answered {r.status} {r.text()[:120]} "
                       f"(expected 403 operator_only); repro: {repro}")
        return
    if target is None:
        result.attempt(r.status == 200, f"{what}: answered {r.status} {r.text()[:120]}; repro: {repro}")
        if template == "/v1/campaigns" and r.status == 200:
            listed = {c.get("id") for c in (r.json() or {}).get("campaigns", [])}
            allowed = {c for c, o in dep.campaigns.items() if visible(tenant, o)}
            result.attempt(listed == allowed, f"{what}: lists {sorted(listed)}, expected {sorted(allowed)}")
        return
    if target == "missing" or not visible(tenant, dep.campaigns[target]):
        missing_path = path
        if target != "missing":
            for cid in [target] + world.correlations.get(target, []):
                missing_path = missing_path.replace(cid, "no_such_campaign" if cid == target else str(uuid.uuid4()))
        m = request(port, method, missing_path, token=token, body=body)
        same = r.status == 404 and m.status == 404 and r.error_code() == m.error_code()
        result.attempt(same, f"{what}: another tenant's record answered {r.status} {r.error_code()} but a "
                             f"missing one {m.status} {m.error_code()} (must be the same 404); repro: {repro}")
        return
    result.attempt(200 <= r.status < 300, f"{what}: its own record answered {r.status} {r.text()[:120]}; repro: {repro}")


def tricks(result, dep, world, tenant, token):
    port = dep.port
    for cid, owner in dep.campaigns.items():
        if visible(tenant, owner):
            continue
        spellings = [f"/v1/campaigns/{cid}/", f"/v1/campaigns/{cid.upper()}",
                     "/v1/campaigns/" + cid.replace("_", "%5F"), f"/v1/campaigns/./{cid}",
                     f"/v1/campaigns//{cid}", f"/v1/campaigns/{cid}%00",
                     f"/v1/campaigns/{cid}/decisions?agent=orchestrator",
                     f"/v1/campaigns/{cid}/decisions?limit=1000&from=2000-01-01T00:00:00Z"]
        for path in spellings:
            r = request(port, "GET", path, token=token)
            leaked = leaks(r.body, world, tenant, path.replace("%5F", "_").replace("%00", ""))
            result.attempt(not leaked and r.status >= 400,
                           f"{tenant} GET {path}: answered {r.status} {'leaking ' + ', '.join(leaked) if leaked else ''}")
        # An item naming another tenant's campaign inside a batch for the tenant's own.
        own = [c for c, o in dep.campaigns.items() if visible(tenant, o)]
        if own:
            before = outcome_count(dep, world, cid)
            day = world.day()
            item = observation(world.arms[cid][0], day, campaign=cid)
            body = {"campaign": own[0], "day": day, "observations": [item]}
            r = request(port, "POST", "/v1/observations", token=token, body=body)
            items = (r.json() or {}).get("items", []) if r.status == 200 else []
            after = outcome_count(dep, world, cid)
            result.attempt(after == before and all(i.get("status") == "rejected" for i in items),
                           f"{tenant}: an item for {cid} inside a batch for {own[0]} answered {r.status} "
                           f"{r.text()[:160]} ({before} -> {after} outcomes of {cid})")
    # Another tenant's Idempotency-Key: the first tenant's answer is never replayed to it.
    others = [(t, tok) for t, tok in dep.tenants.items() if t != tenant]
    own = [c for c, o in dep.campaigns.items() if visible(tenant, o)]
    if own and others:
        key = f"shared-{uuid.uuid4().hex}"
        other_t, other_tok = others[0]
        other_own = [c for c, o in dep.campaigns.items() if visible(other_t, o)]
        if other_own:
            day = world.day()
            body = {"campaign": other_own[0], "day": day,
                    "observations": [observation(world.arms[other_own[0]][0], day)]}
            first = request(port, "POST", "/v1/observations", token=other_tok, body=body,
                            headers={"Idempotency-Key": key})
            again = request(port, "POST", "/v1/observations", token=token, body=body,
                            headers={"Idempotency-Key": key})
            visible_to_me = visible(tenant, dep.campaigns[other_own[0]])
            expected = 200 if visible_to_me else 404
            result.attempt(again.status == expected and (visible_to_me or again.header("idempotency-replayed") is None),
                           f"{tenant} re-using {other_t}'s Idempotency-Key on its batch answered {again.status} "
                           f"{again.text()[:120]} (first {first.status})")
            # A tenant that sees the other's campaign (a parent of its client) has just used the key
            # in its own space for that batch; a different body under it is rightly refused.
            if not visible_to_me:
                day = world.day()
                mine = {"campaign": own[0], "day": day, "observations": [observation(world.arms[own[0]][0], day)]}
                r = request(port, "POST", "/v1/observations", token=token, body=mine,
                            headers={"Idempotency-Key": key})
                result.attempt(r.status == 200 and r.header("idempotency-replayed") is None,
                               f"{tenant} using {other_t}'s Idempotency-Key for its own batch answered {r.status} "
                               f"{r.text()[:120]}")
    # An operator's cursor from another tenant's campaign.
    for cid, owner in dep.campaigns.items():
        if visible(tenant, owner) or not own:
            continue
        page = request(port, "GET", f"/v1/campaigns/{cid}/decisions?limit=1", token=dep.operator).json() or {}
        cursor = page.get("next_cursor")
        if cursor:
            path = f"/v1/campaigns/{own[0]}/decisions?limit=1000&cursor={cursor}"
            r = request(port, "GET", path, token=token)
            leaked = leaks(r.body, world, tenant, path)
            result.attempt(not leaked, f"{tenant}: the operator's cursor of {cid} handed to "
                                       f"GET /v1/campaigns/{own[0]}/decisions?cursor=... answered {r.status} "
                                       f"with {leaked} in it: {r.text()[:200]}")


def outcome_count(dep, world, cid):
    total = 0
    for c in world.correlations.get(cid, []):
        t = request(dep.port, "GET", f"/v1/traces/{c}", token=dep.operator).json() or {}
        total += len(t.get("outcomes", []))
    return total


if __name__ == "__main__":
    main_wrapper("tenants", run, configure)
