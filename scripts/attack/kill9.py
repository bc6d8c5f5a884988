#!/usr/bin/env python3
"""kill -9 cycles with API writes: every acknowledged write survives, none is doubled.

Each cycle starts the daemon on the same data directory, lets writers post observation batches
(tenant and operator tokens, with and without an Idempotency-Key) for two campaigns, and kills
the daemon with SIGKILL at a random moment while batches are in flight. After each restart the
batches whose answer was lost are sent again (each item must come back recorded or duplicate)
and a sample of acknowledged batches is sent again (each must replay, or come back duplicate
with the outcome id first acknowledged). At the end the daemon is stopped cleanly and
`campaignd kb export` must hold every acknowledged outcome exactly once: one outcome per
campaign, day, channel and variant.
"""

import http.client
import random
import sys
import threading
import time
import uuid

from common import (ACME_CAMPAIGN, US_CAMPAIGN, Daemon, Deployment, Result, kb_export,
                    main_wrapper, observation, request, wait_for_arms)

CAMPAIGN_DAYS = 2000


def configure(parser):
    parser.add_argument("--cycles", type=int, default=30, help="kill -9 cycles (default 30)")
    parser.add_argument("--writers", type=int, default=4, help="concurrent writers (default 4)")
    parser.add_argument("--min-up", type=float, default=0.5,
                        help="least seconds of writing before the kill (default 0.5)")
    parser.add_argument("--max-up", type=float, default=3.0,
                        help="most seconds of writing before the kill (default 3.0)")
    parser.add_argument("--arms", type=int, default=3, help="items per batch (default 3)")


class Ledger:
    """What the writers were told: acknowledged batches, and those whose answer never came."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = []  # dicts: campaign, day, key, token, body, answer, outcomes
        self.unknown = []  # batches sent whose answer was lost
        self.next_day = {}
        self.resent = 0

    def take_day(self, campaign):
        with self.lock:
            day = self.next_day.get(campaign, 0)
            if day >= CAMPAIGN_DAYS - 1:
                return None
            self.next_day[campaign] = day + 1
            return day


def outcomes_of(answer):
    return [(item.get("status"), item.get("outcome")) for item in answer.get("items", [])]


def writer(port, ledger, plan, stop, rng, failures):
    while not stop.is_set():
        campaign, token, arms = rng.choice(plan)
        day = ledger.take_day(campaign)
        if day is None:
            return
        items = [observation(arm, day, impressions=1000 + day, clicks=40, conversions=day % 5,
                             spend=10.0 + day) for arm in arms]
        body = {"campaign": campaign, "day": day, "observations": items}
        key = f"kill9-{campaign}-{day}-{uuid.uuid4().hex[:8]}" if rng.random() < 0.5 else None
        batch = {"campaign": campaign, "day": day, "key": key, "token": token, "body": body}
        try:
            r = request(port, "POST", "/v1/observations", token=token, body=body,
                        headers={"Idempotency-Key": key} if key else None, timeout=30)
        except (OSError, http.client.HTTPException):
            with ledger.lock:
                ledger.unknown.append(batch)
            continue
        answer = r.json() if r.status == 200 else None
        if r.status == 200 and isinstance(answer, dict) and answer.get("recorded") == len(items):
            batch["answer"] = r.body
            batch["outcomes"] = [o for _, o in outcomes_of(answer)]
            with ledger.lock:
                ledger.acked.append(batch)
        elif r.status >= 500 or r.status == 0:
            # Not acknowledged; the daemon may be going down. Retried after the restart.
            with ledger.lock:
                ledger.unknown.append(batch)
        else:
            failures.append(f"day {day} of {campaign} answered {r.status}: {r.text()[:200]}")


def resend(port, batch):
    headers = {"Idempotency-Key": batch["key"]} if batch["key"] else None
    return request(port, "POST", "/v1/observations", token=batch["token"], body=batch["body"],
                   headers=headers, timeout=30)


def run(args):
    """kill -9 cycles with API writes."""
    result = Result("kill9")
    rng = random.Random(args.seed)
    dep = Deployment("kill9", campaigns=(US_CAMPAIGN, ACME_CAMPAIGN), source="api",
                     factor=3600.0, keep=args.keep, campaign_days=CAMPAIGN_DAYS)
    ledger = Ledger()
    logs = []
    ups = [0.0]
    try:
        daemon = Daemon(args.bin, dep)
        logs.append(daemon)
        if not daemon.wait_ready(120):
            result.fail(f"the first start never answered /healthz: {daemon.text()[-300:]}")
            daemon.kill9()
            return result
        plan = []
        for cid, tenant, *_ in (US_CAMPAIGN, ACME_CAMPAIGN):
            arms = wait_for_arms(dep.port, dep.operator, cid, within=120)
            if not arms:
                result.fail(f"campaign {cid} never decided an experiment; nothing to write")
                continue
            chosen = rng.sample(arms, min(args.arms, len(arms)))
            plan.append((cid, dep.tenants[tenant], chosen))
            plan.append((cid, dep.operator, chosen))
        if not plan:
            daemon.kill9()
            return result
        for cycle in range(args.cycles):
            if cycle > 0:
                daemon = Daemon(args.bin, dep)
                logs.append(daemon)
                began = time.monotonic()
                up = daemon.wait_ready(120)
                ups.append(time.monotonic() - began)
                if not up:
                    result.attempt(False, f"cycle {cycle}: the restart after kill -9 never answered "
                                          f"/healthz; log: {daemon.text()[-300:]}")
                    daemon.kill9()
                    continue
                check_after_restart(dep.port, ledger, rng, result, cycle)
            stop = threading.Event()
            errors = []
            threads = [threading.Thread(target=writer, daemon=True,
                                        args=(dep.port, ledger, plan, stop,
                                              random.Random(rng.random()), errors))
                       for _ in range(args.writers)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(args.min_up, args.max_up))
            daemon.kill9()
            stop.set()
            for t in threads:
                t.join(35)
            ok = not errors
            result.attempt(ok, f"cycle {cycle}: " + "; ".join(errors[:3]))
        # The last cycle's lost answers, then a clean stop and the export.
        daemon = Daemon(args.bin, dep)
        logs.append(daemon)
        if daemon.wait_ready(120):
            check_after_restart(dep.port, ledger, rng, result, args.cycles)
        code, _ = daemon.terminate(dep.shutdown_timeout + 15)
        if code != 0:
            result.fail(f"the final SIGTERM exited {code}")
        verify_export(args.bin, dep, ledger, result)
        for d in logs:
            for line in d.panics()[:3]:
                result.fail(f"panic in a daemon log: {line[:300]}")
        result.note(f"{len(ledger.acked)} acknowledged batches "
                    f"({sum(len(b['outcomes']) for b in ledger.acked)} observations) over "
                    f"{args.cycles} kill -9 cycles; {ledger.resent} unanswered batches re-sent; "
                    f"restarts took {min(ups):.1f}-{max(ups):.1f} s to answer /healthz")
        return result
    finally:
        for d in logs:
            if d.running():
                d.kill9()
        dep.cleanup()


def check_after_restart(port, ledger, rng, result, cycle):
    """Sends the unanswered batches again, and a sample of the acknowledged ones."""
    with ledger.lock:
        pending, ledger.unknown = ledger.unknown, []
        ledger.resent += len(pending)
        sample = rng.sample(ledger.acked, min(5, len(ledger.acked)))
    for batch in pending:
        try:
            r = resend(port, batch)
        except (OSError, http.client.HTTPException) as e:
            result.fail(f"cycle {cycle}: re-sending day {batch['day']} of {batch['campaign']} failed: {e}")
            continue
        answer = r.json() if r.status == 200 else None
        statuses = [s for s, _ in outcomes_of(answer)] if isinstance(answer, dict) else []
        if r.status != 200 or not statuses or any(s not in ("recorded", "duplicate") for s in statuses):
            result.fail(f"cycle {cycle}: re-sent unanswered day {batch['day']} of {batch['campaign']} "
                        f"answered {r.status}: {r.text()[:200]}")
            continue
        batch["answer"] = r.body
        batch["outcomes"] = [o for _, o in outcomes_of(answer)]
        with ledger.lock:
            ledger.acked.append(batch)
    for batch in sample:
        try:
            r = resend(port, batch)
        except (OSError, http.client.HTTPException) as e:
            result.fail(f"cycle {cycle}: re-sending acknowledged day {batch['day']} failed: {e}")
            continue
        answer = r.json() if r.status == 200 else None
        if r.status != 200 or not isinstance(answer, dict):
            result.fail(f"cycle {cycle}: re-sent acknowledged day {batch['day']} of "
                        f"{batch['campaign']} answered {r.status}: {r.text()[:200]}")
            continue
        if batch["key"] and r.header("idempotency-replayed") != "true":
            result.fail(f"cycle {cycle}: acknowledged key {batch['key']} was not replayed after "
                        f"kill -9: {r.text()[:200]}")
        got = outcomes_of(answer)
        if batch["key"] and r.body == batch["answer"]:
            continue
        for (status, outcome), first in zip(got, batch["outcomes"]):
            if status != "duplicate" or outcome != first:
                result.fail(f"cycle {cycle}: acknowledged day {batch['day']} of {batch['campaign']} "
                            f"came back {status} {outcome} (first acknowledged as {first}): "
                            f"lost or doubled")


def observation_lines(record):
    """The observations an exported outcome holds: the lines of an `observations` outcome (one
    per channel and batch), the one line of an `observation` outcome (as campaignd 0.1 recorded
    them), or None for any other record."""
    if record.get("record") != "outcome":
        return None
    metrics = record.get("metrics") or {}
    if record.get("kind") == "observations":
        return [o for o in metrics.get("observations") or [] if isinstance(o, dict)]
    if record.get("kind") == "observation":
        return [metrics.get("observation") or {}]
    return None


def verify_export(binary, dep, ledger, result):
    code, records, err = kb_export(binary, dep)
    if code != 0:
        result.fail(f"kb export after the last stop exited {code}: {err[-300:]}")
        return
    by_slot = {}
    held = {}  # outcome id -> the (channel, variant) of each line it holds
    for r in records:
        lines = observation_lines(r)
        if lines is None:
            continue
        day = (r.get("metrics") or {}).get("day")
        for o in lines:
            slot = (r.get("campaign"), day, o.get("channel"), o.get("variant"))
            by_slot.setdefault(slot, []).append(r.get("id"))
            held.setdefault(r.get("id"), set()).add((o.get("channel"), o.get("variant")))
    doubled = {slot: v for slot, v in by_slot.items() if len(v) > 1}
    for slot, v in list(doubled.items())[:20]:
        result.fail(f"doubled: {slot} has {len(v)} outcomes {v}")
    if len(doubled) > 20:
        result.fail(f"... and {len(doubled) - 20} more doubled observations")
    # Every acknowledged item must be a line of the outcome its answer named.
    lost = [(b, item, o) for b in ledger.acked
            for item, o in zip(b["body"]["observations"], b["outcomes"])
            if (item.get("channel"), item.get("variant")) not in held.get(o, set())]
    for b, item, o in lost[:20]:
        result.fail(f"lost: acknowledged {item.get('variant')} (day {b['day']} of "
                    f"{b['campaign']}, key {b['key']}) is not a line of outcome {o} in kb export")
    if len(lost) > 20:
        result.fail(f"... and {len(lost) - 20} more lost observations")
    result.note(f"kb export: {len(held)} observation outcomes holding "
                f"{sum(len(v) for v in by_slot.values())} lines, {len(doubled)} doubled, "
                f"{len(lost)} acknowledged observations missing")


if __name__ == "__main__":
    main_wrapper("kill9", run, configure)
