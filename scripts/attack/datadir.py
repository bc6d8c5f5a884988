#!/usr/bin/env python3
"""Corruptions of the data directory: each open is refused with a clear error or recovers, never
a panic.

A knowledge base is filled by running the daemon (the simulator, three campaigns) and stopping it
cleanly. Each corruption starts from a copy of it: bytes flipped at fixed and seeded random
offsets of sled's `db` file, a block zeroed, the file truncated or extended, `conf` removed,
emptied or garbled, sled's snapshot file removed, cut, flipped or garbled, a blob removed, cut
or flipped, `db` removed or made a folder or a dangling
link, the `kb` folder made a file or removed. Then `campaignd kb export` and `campaignd run` open
it: each must either work (export exits 0; run answers /healthz and a normal request and exits 0
on SIGTERM) or exit non-zero with a message naming the knowledge base or its folder, within a
bound, without a panic, and without the hint "is another campaignd using it?" (that is for a
folder another process holds, which none does here).
"""

import os
import random
import shutil
import signal
import subprocess
import time

from common import (ACME_CAMPAIGN, KR_CAMPAIGN, PANIC, US_CAMPAIGN, Daemon, Deployment, Result,
                    clean_env, healthy, main_wrapper, request, run_command)

CLEAR = ("knowledge base", "data_dir", "data/kb", "kb:", "sled", "database")
# The hint for a directory another process has locked; on any other error it sends the operator
# looking for a second daemon that is not there.
LOCK_HINT = "is another campaignd using it"


def configure(parser):
    parser.add_argument("--count", type=int, default=48,
                        help="corruptions in all (default 48: the fixed ones, then seeded random flips)")
    parser.add_argument("--fill", type=float, default=6.0,
                        help="seconds the daemon runs to fill the knowledge base (default 6)")


def flip(relative, offset, span=1):
    def apply(kb):
        path = os.path.join(kb, relative)
        size = os.path.getsize(path)
        at = offset if offset >= 0 else size + offset
        at = max(0, min(size - 1, at))
        with open(path, "r+b") as f:
            f.seek(at)
            data = bytearray(f.read(span))
            f.seek(at)
            f.write(bytes(b ^ 0xFF for b in data))
    return apply


def zero(relative, offset, length):
    def apply(kb):
        path = os.path.join(kb, relative)
        size = os.path.getsize(path)
        at = offset if offset >= 0 else max(0, size + offset)
        with open(path, "r+b") as f:
            f.seek(at)
            f.write(b"\0" * min(length, max(0, size - at)))
    return apply


def truncate(relative, fraction=None, size=None):
    def apply(kb):
        path = os.path.join(kb, relative)
        new = size if size is not None else int(os.path.getsize(path) * fraction)
        os.truncate(path, new)
    return apply


def append_garbage(relative, length):
    def apply(kb):
        with open(os.path.join(kb, relative), "ab") as f:
            f.write(random.Random(length).randbytes(length))
    return apply


def write(relative, data):
    def apply(kb):
        with open(os.path.join(kb, relative), "wb") as f:
            f.write(data)
    return apply


def remove(relative):
    def apply(kb):
        path = os.path.join(kb, relative)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    return apply


def make_dir(relative):
    def apply(kb):
        remove(relative)(kb)
        os.makedirs(os.path.join(kb, relative))
    return apply


def dangling(relative):
    def apply(kb):
        remove(relative)(kb)
        os.symlink("/nonexistent/campaignd-attack", os.path.join(kb, relative))
    return apply


def kb_is_file(kb):
    shutil.rmtree(kb)
    with open(kb, "w") as f:
        f.write("not a knowledge base\n")


def kb_removed(kb):
    shutil.rmtree(kb)


def blob(kb, pick=0):
    blobs = sorted(os.listdir(os.path.join(kb, "blobs"))) if os.path.isdir(os.path.join(kb, "blobs")) else []
    return os.path.join("blobs", blobs[pick % len(blobs)]) if blobs else None


def on_blob(make):
    def apply(kb):
        b = blob(kb)
        if b is None:
            raise RuntimeError("the knowledge base has no blob")
        make(b)(kb)
    return apply


def snap(kb):
    snaps = sorted(f for f in os.listdir(kb) if f.startswith("snap."))
    return snaps[-1] if snaps else None


def on_snap(make):
    def apply(kb):
        name = snap(kb)
        if name is None:
            raise RuntimeError("the knowledge base has no snapshot")
        make(name)(kb)
    return apply


def corruptions(rng, count, db_size):
    fixed = [
        ("db: first byte flipped", flip("db", 0)),
        ("db: byte 8 flipped", flip("db", 8)),
        ("db: byte 20 flipped", flip("db", 20)),
        ("db: byte 512 flipped", flip("db", 512)),
        ("db: byte 4096 flipped", flip("db", 4096)),
        ("db: middle byte flipped", flip("db", db_size // 2)),
        ("db: last byte flipped", flip("db", -1)),
        ("db: 16 bytes flipped at 1/3", flip("db", db_size // 3, 16)),
        ("db: first 4 KiB zeroed", zero("db", 0, 4096)),
        ("db: 64 KiB zeroed in the middle", zero("db", db_size // 2, 65536)),
        ("db: truncated to 0 bytes", truncate("db", size=0)),
        ("db: truncated to 100 bytes", truncate("db", size=100)),
        ("db: truncated to half", truncate("db", fraction=0.5)),
        ("db: 4 KiB of garbage appended", append_garbage("db", 4096)),
        ("db: removed", remove("db")),
        ("db: a folder", make_dir("db")),
        ("db: a dangling symlink", dangling("db")),
        ("conf: removed", remove("conf")),
        ("conf: empty", write("conf", b"")),
        ("conf: garbage", write("conf", b"\xff\xfe segment_size: banana\n")),
        ("snapshot: removed", on_snap(remove)),
        ("snapshot: byte 100 flipped", on_snap(lambda n: flip(n, 100))),
        ("snapshot: truncated to 1000 bytes", on_snap(lambda n: truncate(n, size=1000))),
        ("snapshot: garbage", on_snap(lambda n: write(n, random.Random(7).randbytes(3000)))),
        ("blob: removed", on_blob(remove)),
        ("blob: truncated", on_blob(lambda b: truncate(b, fraction=0.5))),
        ("blob: first byte flipped", on_blob(lambda b: flip(b, 0))),
        ("kb: a file instead of a folder", kb_is_file),
        ("kb: removed (a fresh start)", kb_removed),
    ]
    # The first bytes of each 512 KiB segment (sled's default segment size) hold its header.
    for segment in range(0, db_size, 512 * 1024):
        for at in (0, 4, 12, 20):
            if segment + at < db_size:
                fixed.append((f"db: header byte {at} of the segment at {segment} flipped", flip("db", segment + at)))
    out = list(fixed)
    for i in range(max(0, count - len(fixed))):
        # Half anywhere, half in the last 64 KiB, where sled's recovery reads the log's tail.
        low = 0 if i % 2 == 0 else max(0, db_size - 65536)
        offsets = sorted(rng.randrange(low, db_size) for _ in range(rng.randint(1, 8)))

        def apply(kb, offsets=offsets):
            for o in offsets:
                flip("db", o)(kb)
        out.append((f"db: random bytes flipped at {offsets}", apply))
    return out


def run(args):
    """Corruptions of the data directory."""
    result = Result("datadir")
    rng = random.Random(args.seed)
    dep = Deployment("datadir", campaigns=(US_CAMPAIGN, KR_CAMPAIGN, ACME_CAMPAIGN), source="simulator",
                     factor=172800.0, shutdown_timeout=10, keep=args.keep)
    try:
        daemon = Daemon(args.bin, dep)
        if not daemon.wait_ready(120):
            result.fail(f"the daemon never answered /healthz: {daemon.text()[-300:]}")
            daemon.kill9()
            return result
        time.sleep(args.fill)
        code, _ = daemon.terminate(30)
        if code != 0:
            result.fail(f"filling: SIGTERM exited {code}")
        kb = dep.path("data/kb")
        # Large records, so that sled keeps some values as blobs of their own.
        code, out, err = run_command(args.bin, ["kb", "bench", "--data-dir", kb, "--record-bytes", "200000",
                                                "--count", "12", "--writers", "2"], dep.dir, timeout=120)
        if code != 0:
            result.note(f"kb bench for blobs exited {code}: {err.strip()[-200:]}")
        # The opens below need no simulated market: the campaigns wait for API data.
        dep.source, dep.factor = "api", 3600.0
        dep.write_config()
        pristine = dep.path("pristine-kb")
        shutil.copytree(kb, pristine, symlinks=True)
        db_size = os.path.getsize(os.path.join(pristine, "db"))
        blobs = len(os.listdir(os.path.join(pristine, "blobs"))) if os.path.isdir(os.path.join(pristine, "blobs")) else 0
        result.note(f"filled: db of {db_size} bytes, {blobs} blobs")
        code, out, err = run_command(args.bin, ["kb", "export", "--data-dir", pristine], dep.dir, timeout=120)
        records = out.count("\n")
        result.note(f"the pristine knowledge base exports {records} records")
        silent = []
        opened = refused = 0
        for name, apply in corruptions(rng, args.count, db_size):
            if os.path.isdir(kb) and not os.path.islink(kb):
                shutil.rmtree(kb)
            elif os.path.lexists(kb):
                os.remove(kb)
            shutil.copytree(pristine, kb, symlinks=True)
            try:
                apply(kb)
            except Exception as e:
                result.note(f"{name}: not applied ({e})")
                continue
            backup = dep.path("corrupt-kb")
            shutil.rmtree(backup, ignore_errors=True)
            if os.path.isdir(kb):
                shutil.copytree(kb, backup, symlinks=True)
            failures = []
            # 1. kb export (a plain open).
            code, out, err = run_command(args.bin, ["--config", "config/campaignd.toml", "kb", "export"],
                                         dep.dir, timeout=120)
            failures += judge("kb export", code, err)
            if code == 0 and name != "kb: removed (a fresh start)":
                exported = out.count("\n")
                if exported < records:
                    silent.append(f"{name}: {exported} of {records}")
            # 2. run, from the same corrupted copy.
            if os.path.isdir(backup):
                shutil.rmtree(kb, ignore_errors=True)
                shutil.copytree(backup, kb, symlinks=True)
            verdict, more = try_run(args, dep)
            failures += more
            if verdict == "opened":
                opened += 1
            else:
                refused += 1
            result.attempt(not failures, f"{name}: " + "; ".join(failures) +
                           f"; repro: copy a stopped daemon's data/kb, apply '{name}', "
                           f"then campaignd kb export / campaignd run")
        result.note(f"{opened} opened (recovered), {refused} refused")
        if silent:
            result.note("kb export exited 0 with fewer records than before the corruption: " + "; ".join(silent))
        return result
    finally:
        dep.cleanup()


def judge(what, code, err):
    failures = []
    if PANIC.search(err):
        line = next(l for l in err.splitlines() if PANIC.search(l))
        failures.append(f"{what} panicked: {line.strip()[:200]}")
    if code is None:
        failures.append(f"{what} did not finish within its bound")
    elif code != 0 and not failures:
        lines = [l for l in err.splitlines() if l.strip()]
        if code not in (1, 2):
            failures.append(f"{what} exited {code}: {' | '.join(lines[-2:])[:200]}")
        elif not any(c in err.lower() for c in CLEAR):
            failures.append(f"{what} exited {code} without naming the knowledge base: {' | '.join(lines[-2:])[:200]}")
        elif LOCK_HINT in err:
            failures.append(f"{what} refused it with the lock hint although nothing holds the lock: "
                            f"{' | '.join(lines[-1:])[:240]}")
    return failures


def try_run(args, dep):
    """Starts the daemon on the corrupted folder: ("opened", failures) or ("refused", failures)."""
    failures = []
    log_path = dep.path("daemon-corrupt.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen([args.bin, "--config", "config/campaignd.toml", "run"], cwd=dep.dir,
                            env=clean_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    verdict = "refused"
    try:
        deadline = time.monotonic() + 60
        up = False
        while time.monotonic() < deadline and proc.poll() is None:
            if healthy(dep.port, timeout=1):
                up = True
                break
            time.sleep(0.2)
        if up:
            verdict = "opened"
            time.sleep(1.0)
            try:
                r = request(dep.port, "GET", "/v1/campaigns", token=dep.operator, timeout=10)
                if r.status != 200:
                    failures.append(f"run opened it but GET /v1/campaigns answered {r.status}")
            except OSError as e:
                failures.append(f"run opened it but GET /v1/campaigns failed: {e}")
            if proc.poll() is not None:
                failures.append(f"run opened it, then exited {proc.returncode} by itself")
            else:
                proc.send_signal(signal.SIGTERM)
                try:
                    code = proc.wait(timeout=dep.shutdown_timeout + 10)
                    if code != 0:
                        failures.append(f"run opened it, then SIGTERM exited {code}")
                except subprocess.TimeoutExpired:
                    failures.append("run opened it, then SIGTERM was not obeyed")
        elif proc.poll() is None:
            failures.append("run neither answered /healthz nor exited within 60 s")
        else:
            code = proc.returncode
            log.flush()
            err = open(log_path, "rb").read().decode("utf-8", "replace")
            if code == 0:
                failures.append("run exited 0 without serving")
            else:
                failures += judge("run", code, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    text = open(log_path, "rb").read().decode("utf-8", "replace")
    if PANIC.search(text) and not any("run panicked" in f for f in failures):
        line = next(l for l in text.splitlines() if PANIC.search(l))
        failures.append(f"run panicked: {line.strip()[:200]}")
    return verdict, failures


if __name__ == "__main__":
    main_wrapper("datadir", run, configure)
