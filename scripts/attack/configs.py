#!/usr/bin/env python3
"""Mutated configurations: each is either accepted or refused by `campaignd check` with a
message naming what is wrong, never a panic; `run` on a refused one exits non-zero without
starting, and `run` on an accepted one starts and obeys SIGTERM.

The mutations start from a valid deployment (one campaign, the shipped agents and tenants, a
tokens file of mode 600) and change one thing each: every numeric setting of
`config/campaignd.toml` pushed to zero, negative, overflowing and absurd values, unknown values
and keys, broken TOML, environment overrides, campaign goals the issue names (a region without
a rule set, an unknown tenant or client, a currency without a rate, a deadline already past),
tenant files, agent definitions, the tokens file (its mode, a short token, an unknown tenant), and
then seeded random line and byte mutations until --count mutations have run. A mutation marked
"must refuse" fails when `check` accepts it; every refusal must name the key or file it is about.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import time

from common import (PANIC, US_CAMPAIGN, Deployment, Result, campaign_toml, clean_env, healthy,
                    main_wrapper, run_command)

CID = US_CAMPAIGN[0]
BIG = 2 ** 63 - 1


def configure(parser):
    parser.add_argument("--count", type=int, default=110,
                        help="mutations in all (default 110; at least the fixed ones)")
    parser.add_argument("--run-accepted", type=float, default=2.0,
                        help="seconds an accepted mutation runs before SIGTERM (default 2; 0 skips)")


class Mutation:
    def __init__(self, name, apply, names, must_refuse=True, env=None, run_warns=False):
        self.name = name
        self.apply = apply  # function(dep) changing files
        self.names = names  # words the refusal must contain (any one)
        self.must_refuse = must_refuse
        self.env = env or {}
        # `check` refuses it, but `run` and a reload start with a warning and fail closed instead
        # (docs/configuration.md: a 0.1.0 agents folder still starts; a campaign in a region
        # without a rule set is held), so a `run` that starts is right.
        self.run_warns = run_warns


def set_key(section, key, literal):
    """Sets `[section] key = literal` (a TOML literal as written) in config/campaignd.toml."""
    def apply(dep):
        path = dep.path("config/campaignd.toml")
        lines = open(path).read().splitlines()
        out, in_section, done = [], False, False
        for line in lines:
            stripped = line.strip()
            if stripped.startswith("["):
                if in_section and not done:
                    out.append(f"{key} = {literal}")
                    done = True
                in_section = stripped == f"[{section}]"
            elif in_section and stripped.split("=")[0].strip() == key:
                if literal is not None:
                    out.append(f"{key} = {literal}")
                done = True
                continue
            out.append(line)
        if not done:
            if not in_section:
                out.append(f"[{section}]")
            if literal is not None:
                out.append(f"{key} = {literal}")
        open(path, "w").write("\n".join(out) + "\n")
    return apply


def write_file(relative, text, mode=None):
    def apply(dep):
        path = dep.path(relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
        if mode is not None:
            os.chmod(path, mode)
    return apply


def edit_file(relative, old, new):
    def apply(dep):
        path = dep.path(relative)
        text = open(path).read()
        if old not in text:
            raise RuntimeError(f"{relative} has no {old!r} to change")
        open(path, "w").write(text.replace(old, new, 1))
    return apply


def append_file(relative, text):
    def apply(dep):
        with open(dep.path(relative), "a") as f:
            f.write(text)
    return apply


def remove(relative):
    def apply(dep):
        path = dep.path(relative)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    return apply


def chmod(relative, mode):
    def apply(dep):
        os.chmod(dep.path(relative), mode)
    return apply


def both(*steps):
    def apply(dep):
        for s in steps:
            s(dep)
    return apply


def campaign(**changes):
    """The campaign file with keys replaced (TOML literals) or added."""
    def apply(dep):
        path = dep.path(f"config/campaigns/{CID}.toml")
        lines = open(path).read().splitlines()
        top = []
        rest = []
        seen = set()
        in_table = False
        for line in lines:
            if line.startswith("["):
                in_table = True
            key = line.split("=")[0].strip()
            target = rest if in_table else top
            if not in_table and key in changes:
                seen.add(key)
                if changes[key] is not None:
                    target.append(f"{key} = {changes[key]}")
                continue
            if in_table and "budget." + key in changes:
                seen.add("budget." + key)
                if changes["budget." + key] is not None:
                    target.append(f"{key} = {changes['budget.' + key]}")
                continue
            target.append(line)
        for key, value in changes.items():
            if key not in seen and value is not None:
                if key.startswith("budget."):
                    idx = rest.index("[budget]") + 1
                    rest.insert(idx, f"{key[7:]} = {value}")
                else:
                    top.append(f"{key} = {value}")
        open(path, "w").write("\n".join(top + rest) + "\n")
    return apply


def fixed_mutations():
    m = []
    add = lambda *a, **k: m.append(Mutation(*a, **k))
    # [daemon]
    for v in ["0", "-1", str(BIG), "18446744073709551616", "1.5", '"30"']:
        add(f"daemon.shutdown_timeout_secs = {v}", set_key("daemon", "shutdown_timeout_secs", v),
            ["shutdown_timeout_secs", "campaignd.toml"])
    add('daemon.data_dir = "" ', set_key("daemon", "data_dir", '""'), ["data_dir"])
    add("daemon.data_dir is a file", set_key("daemon", "data_dir", '"tokens.toml"'), ["data_dir", "tokens.toml"])
    add("daemon.data_dir not writable", set_key("daemon", "data_dir", '"/proc/campaignd-attack"'), ["data_dir", "/proc"])
    add("daemon.agents_dir missing", set_key("daemon", "agents_dir", '"no_such_agents"'), ["agents_dir", "no_such_agents"])
    add("daemon.campaigns_dir missing", set_key("daemon", "campaigns_dir", '"no_such_campaigns"'),
        ["campaigns_dir", "no_such_campaigns"])
    add("daemon.unknown key", set_key("daemon", "data_dri", '"data"'), ["data_dri"])
    # [log]
    add('log.format = "xml"', set_key("log", "format", '"xml"'), ["format", "xml"])
    add("log.format = 5", set_key("log", "format", "5"), ["format"])
    # [kb]
    add('kb.durability = "sometimes"', set_key("kb", "durability", '"sometimes"'), ["durability"])
    for key, values in [("batch_max", ["0", "-1", str(BIG)]), ("queue_capacity", ["0", str(BIG)]),
                        ("max_record_bytes", ["0", "16777217"]), ("cache_capacity_bytes", ["0", "-1", str(BIG)])]:
        for v in values:
            add(f"kb.{key} = {v}", set_key("kb", key, v), [key])
    # [protocol]
    for v in ["0", "1023", "67108865", str(BIG)]:
        add(f"protocol.max_message_bytes = {v}", set_key("protocol", "max_message_bytes", v), ["max_message_bytes"])
    # [runtime]
    for v in ["0", "-5", str(BIG)]:
        add(f"runtime.mailbox = {v}", set_key("runtime", "mailbox", v), ["mailbox"])
    for v in ["0", str(BIG)]:
        add(f"runtime.request_timeout_ms = {v}", set_key("runtime", "request_timeout_ms", v), ["request_timeout_ms"])
    add('runtime.command_senders = ["nobody"]', set_key("runtime", "command_senders", '["nobody"]'), ["command_senders", "nobody"])
    # [clock]
    add('clock.mode = "warp"', set_key("clock", "mode", '"warp"'), ["mode", "warp"])
    for v in ["1e300", "0.0", "-1.0", "nan", "inf"]:
        add(f"clock.factor = {v}", set_key("clock", "factor", v), ["factor"])
    add('clock.mode = "real" with factor', set_key("clock", "mode", '"real"'), ["factor", "mode"])
    add('clock.start = "yesterday"', set_key("clock", "start", '"yesterday"'), ["start"])
    # [market]
    add('market.source = "carrier"', set_key("market", "source", '"carrier"'), ["source"])
    add("market.seed = -1", set_key("market", "seed", "-1"), ["seed"])
    # [api]
    for v in ['"localhost:x"', '"999.0.0.1:80"', '"127.0.0.1:99999"', '""']:
        add(f"api.listen = {v}", set_key("api", "listen", v), ["listen"])
    for v in ["0", "1023", str(BIG)]:
        add(f"api.body_limit_bytes = {v}", set_key("api", "body_limit_bytes", v), ["body_limit_bytes"])
    add("api.tokens_file missing", set_key("api", "tokens_file", '"no_such_tokens.toml"'), ["tokens_file", "no_such_tokens"])
    add("tokens file mode 644", chmod("tokens.toml", 0o644), ["tokens", "644", "mode"])
    add("tokens file mode 640", chmod("tokens.toml", 0o640), ["tokens", "640", "mode"])
    add("token shorter than 16", write_file("tokens.toml", '[[tokens]]\nname = "ops"\ntoken = "short"\n', 0o600), ["token", "16"])
    add("token of an unknown tenant", write_file(
        "tokens.toml", '[[tokens]]\nname = "ops"\ntoken = "0123456789abcdef0123"\ntenant = "nobody"\n', 0o600),
        ["tenant", "nobody"])
    add("token of an unknown client", write_file(
        "tokens.toml", '[[tokens]]\nname = "ops"\ntoken = "0123456789abcdef0123"\ntenant = "acme/nobody"\n', 0o600),
        ["tenant", "acme/nobody"])
    add("tokens file not TOML", write_file("tokens.toml", "[[tokens\nname=", 0o600), ["tokens.toml"])
    add("tokens file unknown key", write_file(
        "tokens.toml", '[[tokens]]\nname = "ops"\ntoken = "0123456789abcdef0123"\nrole = "admin"\n', 0o600), ["role"])
    add("two tokens with the same secret", write_file(
        "tokens.toml", '[[tokens]]\nname = "a"\ntoken = "0123456789abcdef0123"\n[[tokens]]\nname = "b"\n'
        'token = "0123456789abcdef0123"\ntenant = "globex"\n', 0o600), ["token"])
    # TOML itself.
    add("campaignd.toml: unterminated string", append_file("config/campaignd.toml", '\n[daemon2]\nx = "abc\n'),
        ["campaignd.toml"])
    add("campaignd.toml: duplicate key", append_file("config/campaignd.toml", '\n[market]\nseed = 1\n'), ["campaignd.toml", "market"])
    add("campaignd.toml: binary garbage", write_file("config/campaignd.toml", bytes(range(256))), ["campaignd.toml"])
    add("campaignd.toml: unknown section", append_file("config/campaignd.toml", "\n[turbo]\nx = 1\n"), ["turbo"])
    # The environment.
    for var, value in [("CAMPAIGND__CLOCK__FACTOR", "1e300"), ("CAMPAIGND__LOG__FORMAT", "xml"),
                       ("CAMPAIGND__KB__BATCH_MAX", "abc"), ("CAMPAIGND__NOPE__X", "1"),
                       ("CAMPAIGND__DAEMON__SHUTDOWN_TIMEOUT_SECS", "18446744073709551616"),
                       ("CAMPAIGND__KB__CACHE_CAPACITY_BYTES", "0")]:
        add(f"environment {var}={value}", lambda dep: None, [var, var.split("__")[1].lower()], env={var: value})
    # Campaigns.
    for k, v, names in [
        ("regions", '["XX"]', ["regions", "XX"]), ("regions", '["JP"]', ["regions", "JP"]),
        ("tenant", '"nobody"', ["tenant", "nobody"]), ("tenant", '"acme/nobody"', ["tenant", "acme/nobody"]),
        ("target", "0", ["target"]), ("target", "-1", ["target"]), ("target", "18446744073709551616", ["target"]),
        ("channels", "[]", ["channels"]), ("channels", '["fax"]', ["channels", "fax"]),
        ("objective", '"fame"', ["objective"]), ("id", '"other_id"', ["id", "other_id"]),
        ("deadline", '"2020-01-31T00:00:00Z"', ["deadline"]), ("start", '"2030-01-01T00:00:00Z"', ["start", "deadline"]),
        ("deadline", '"2026-13-01T00:00:00Z"', ["deadline"]), ("deadline", '"2027-01-01T00:00:00"', ["deadline"]),
        ("budget.currency", '"XYZ"', ["currency", "XYZ"]), ("budget.total", "0.0", ["total"]),
        ("budget.total", "-5.0", ["total"]), ("budget.total", "nan", ["total"]), ("budget.total", "inf", ["total"]),
        ("budget.daily_cap", "-1.0", ["daily_cap"]), ("bonus", "1", ["bonus"]),
    ]:
        add(f"campaign {k} = {v}", campaign(**{k: v}), names, run_warns=(k == "regions"))
    add("campaign: past deadline, no start", campaign(start=None, deadline='"2020-01-31T00:00:00Z"'), ["deadline"])
    add("campaign: a segment share of 1.5", edit_file(f"config/campaigns/{CID}.toml", 'id = "past_buyers"',
                                                       'id = "past_buyers"\nshare = 1.5'), ["share"])
    add("campaign: two files, one id", lambda dep: shutil.copy(dep.path(f"config/campaigns/{CID}.toml"),
                                                              dep.path("config/campaigns/copy.toml")),
        [CID, "copy"])
    add("campaign: not TOML", write_file(f"config/campaigns/{CID}.toml", "id = \n"), [CID])
    add("campaign: empty file", write_file(f"config/campaigns/{CID}.toml", ""), [CID])
    # Tenant files.
    add("tenant file not TOML", write_file("config/tenants/globex.toml", "[guideline\n"), ["globex"])
    add("tenant file unknown key", append_file("config/tenants/globex.toml", "\n[guideline.sparkle]\nlevel = 11\n"),
        ["globex", "sparkle"])
    add("tenant file wrong type", write_file("config/tenants/globex.toml", "[guideline]\nbrand_name = 5\n"),
        ["globex", "brand_name"])
    # Agents.
    add("agent file without an implementation", write_file("agents/ghost.toml", "[agent]\nenabled = true\n"), ["ghost"],
        run_warns=True)
    add("agent subscribes to a topic nothing publishes", edit_file(
        "agents/optimization.toml", 'subscribe = ["observations_recorded"]',
        'subscribe = ["observations_recorded", "nothing_publishes_this"]'), ["nothing_publishes_this", "subscribe"],
        run_warns=True)
    add("agent max_restarts = -1", edit_file("agents/compliance.toml", "max_restarts = 3", "max_restarts = -1"),
        ["max_restarts", "compliance"])
    add("agent mailbox = 0", edit_file("agents/content.toml", "mailbox = 1024", "mailbox = 0"), ["mailbox", "content"])
    add('agent enabled = "yes"', edit_file("agents/strategy.toml", "enabled = true", 'enabled = "yes"'),
        ["enabled", "strategy"])
    add("agent request_timeout_ms huge", edit_file("agents/strategy.toml", "request_timeout_ms = 5000",
                                                  f"request_timeout_ms = {BIG}"), ["request_timeout_ms"])
    add("agent within_secs = 0", edit_file("agents/orchestrator.toml", "within_secs = 60", "within_secs = 0"),
        ["within_secs"], must_refuse=None)
    add("compliance playbook quiet_start 25:00", edit_file("agents/compliance.toml", 'quiet_start = "21:00"',
                                                           'quiet_start = "25:00"'), ["quiet_start"])
    add("agents file not TOML", write_file("agents/content.toml", "[agent\n"), ["content"])
    add("agent file name not an agent name", write_file("agents/Bad-Name.toml", "[agent]\n"), ["Bad-Name"])
    return m


def random_mutations(rng, count):
    """Seeded line and byte mutations of the deployment's files; no expectation but the rules."""
    files = ["config/campaignd.toml", f"config/campaigns/{CID}.toml", "agents/orchestrator.toml",
             "agents/optimization.toml", "config/tenants/globex.toml"]
    extremes = ["0", "-1", str(BIG), "1e309", '""', "[]", "{}", '"\u0000"', "true", "nan", "-0.0",
                "99999999999999999999", '"x"', "1970-01-01T00:00:00Z"]
    out = []
    for i in range(count):
        relative = rng.choice(files)
        kind = rng.randrange(4)
        seed = rng.random()

        def apply(dep, relative=relative, kind=kind, seed=seed):
            r = random.Random(seed)
            path = dep.path(relative)
            text = open(path, "rb").read()
            lines = text.split(b"\n")
            values = [i for i, l in enumerate(lines) if b"=" in l and not l.lstrip().startswith(b"#")]
            if kind == 0 and values:
                i = r.choice(values)
                key = lines[i].split(b"=")[0]
                lines[i] = key + b"= " + r.choice(extremes).encode()
            elif kind == 1 and lines:
                del lines[r.randrange(len(lines))]
            elif kind == 2 and lines:
                i = r.randrange(len(lines))
                lines.insert(i, lines[i])
            else:
                raw = bytearray(text)
                for _ in range(r.randint(1, 3)):
                    raw[r.randrange(len(raw))] = r.randrange(256)
                open(path, "wb").write(bytes(raw))
                return
            open(path, "wb").write(b"\n".join(lines))

        label = ["a value set to an extreme", "a line deleted", "a line doubled", "bytes flipped"][kind]
        out.append(Mutation(f"random #{i}: {relative}: {label}", apply, [], must_refuse=None))
    return out


def snapshot(dep):
    keep = {}
    for root, _, files in os.walk(dep.dir):
        for f in files:
            path = os.path.join(root, f)
            rel = os.path.relpath(path, dep.dir)
            if rel.startswith("data") or rel.startswith("daemon-"):
                continue
            keep[rel] = (open(path, "rb").read(), os.stat(path).st_mode & 0o777)
    return keep


def restore(dep, keep):
    for root, dirs, files in os.walk(dep.dir, topdown=False):
        for f in files:
            path = os.path.join(root, f)
            if os.path.relpath(path, dep.dir) not in keep:
                os.remove(path)
    for rel, (data, mode) in keep.items():
        path = dep.path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
    shutil.rmtree(dep.path("data"), ignore_errors=True)
    os.makedirs(dep.path("data"))


def run(args):
    """Mutated configurations."""
    result = Result("configs")
    rng = random.Random(args.seed)
    dep = Deployment("configs", campaigns=(US_CAMPAIGN,), source="api", shutdown_timeout=5, keep=args.keep)
    keep = snapshot(dep)
    mutations = fixed_mutations()
    mutations += random_mutations(rng, max(0, args.count - len(mutations)))
    accepted = refused = 0
    try:
        code, out, err = run_command(args.bin, ["--config", "config/campaignd.toml", "check"], dep.dir)
        if code != 0:
            result.fail(f"the unmutated deployment does not pass check ({code}): {err[-300:]}")
            return result
        for m in mutations:
            restore(dep, keep)
            try:
                m.apply(dep)
            except Exception as e:  # a mutation that no longer fits the shipped files
                result.note(f"{m.name}: not applied ({e})")
                continue
            outcome = attempt(args, dep, m, result)
            if outcome == "accepted":
                accepted += 1
            elif outcome == "refused":
                refused += 1
        result.note(f"{accepted} accepted, {refused} refused by check")
        return result
    finally:
        dep.cleanup()


def attempt(args, dep, m, result):
    # Listen on the deployment's own port whatever the file says, unless the mutation is about
    # `api.listen` itself or sets the variable.
    env = dict(m.env)
    if "listen" not in m.name:
        env.setdefault("CAMPAIGND__API__LISTEN", f"127.0.0.1:{dep.port}")
    code, out, err = run_command(args.bin, ["--config", "config/campaignd.toml", "check"], dep.dir, env=env, timeout=60)
    text = out + err
    failures = []
    if PANIC.search(text):
        failures.append(f"check panicked: {first_panic(text)}")
    if code is None:
        failures.append("check did not finish within 60 s")
    elif code == 0:
        if m.must_refuse:
            failures.append("check accepted it (exit 0)")
    elif code in (1, 2):
        lines = [l for l in err.splitlines() if l.strip()]
        if not lines:
            failures.append(f"check exited {code} and printed nothing")
        elif m.names and not any(n.lower() in err.lower() for n in m.names):
            failures.append(f"check's message names none of {m.names}: {' | '.join(lines)[:200]}")
    else:
        failures.append(f"check exited {code}: {err.strip()[-200:]}")
    verdict = "accepted" if code == 0 else "refused"
    # `run` on it.
    if code != 0:
        rcode, rout, rerr = run_command(args.bin, ["--config", "config/campaignd.toml", "run"], dep.dir,
                                        env=env, timeout=20)
        rtext = rout + rerr
        if rcode is None and not m.run_warns:
            failures.append("check refused it but run started anyway (still running after 20 s)")
        elif rcode == 0:
            failures.append("check refused it but run exited 0")
        if PANIC.search(rtext):
            failures.append(f"run panicked: {first_panic(rtext)}")
    elif args.run_accepted > 0:
        failures += run_accepted(args, dep, env)
    result.attempt(not failures, f"{m.name}: " + "; ".join(failures) + f"; repro: {repro(m)}")
    return verdict


def run_accepted(args, dep, env):
    """Starts an accepted mutation, lets it run, sends SIGTERM: it must stay up until then and
    exit 0 within its shutdown bound."""
    failures = []
    log = open(dep.path("daemon-accepted.log"), "wb")
    proc = subprocess.Popen([args.bin, "--config", "config/campaignd.toml", "run"], cwd=dep.dir,
                            env=clean_env(env), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        up = False
        while time.monotonic() < deadline and proc.poll() is None:
            if healthy(dep.port, timeout=1):
                up = True
                break
            time.sleep(0.2)
        if up:
            time.sleep(args.run_accepted)
        code = proc.poll()
        if code is not None:
            failures.append(f"check accepted it but run exited {code} by itself")
        elif not up:
            failures.append("check accepted it but run never answered /healthz within 30 s")
        if proc.poll() is None:
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=45)
                if code != 0:
                    failures.append(f"SIGTERM: exit {code}")
            except subprocess.TimeoutExpired:
                failures.append(f"SIGTERM not obeyed within 45 s")
            if time.monotonic() - started > 15 and not failures:
                failures.append(f"SIGTERM took {time.monotonic() - started:.0f} s")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    text = open(dep.path("daemon-accepted.log"), "rb").read().decode("utf-8", "replace")
    if PANIC.search(text):
        failures.append(f"run panicked: {first_panic(text)}")
    return failures


def first_panic(text):
    for line in text.splitlines():
        if PANIC.search(line):
            return line.strip()[:200]
    return ""


def repro(m):
    env = " ".join(f"{k}={v}" for k, v in m.env.items())
    return (f"in a valid deployment, change {m.name}; then {env + ' ' if env else ''}campaignd check "
            f"and campaignd run")


if __name__ == "__main__":
    main_wrapper("configs", run, configure)
