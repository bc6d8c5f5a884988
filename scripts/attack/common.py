"""What the attack scripts share: finding the binary, making a deployment in a fresh temporary
folder (config, campaigns, tenants, agents, a tokens file of mode 600 with operator and tenant
tokens, api.listen on a free 127.0.0.1 port), starting and stopping the real daemon, a raw HTTP
client on loopback, and the result every attack reports.

Python 3 standard library only, so anyone with the repository and a built binary can run them.
"""

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The campaigns' simulated first day: the clock starts here.
SIM_START = "2026-09-01T00:00:00Z"

PANIC = re.compile(r"panicked at|RUST_BACKTRACE|stack backtrace")


# ---------------------------------------------------------------------------------------------
# Results.


class Result:
    """One attack's tally: how many attempts, and one line per failure with how to reproduce it."""

    def __init__(self, attack):
        self.attack = attack
        self.attempts = 0
        self.failures = []
        self.notes = []
        self.started = time.monotonic()
        self.seconds = 0.0

    def attempt(self, ok, failure=None):
        self.attempts += 1
        if not ok:
            self.fail(failure or "failed")
        return ok

    def fail(self, line):
        line = " ".join(str(line).split())
        if len(line) > 900:
            line = line[:897] + "..."
        self.failures.append(line)

    def note(self, line):
        self.notes.append(line)

    def finish(self):
        self.seconds = time.monotonic() - self.started
        return self

    def failed_attempts(self):
        return len(self.failures)

    def to_json(self):
        return {
            "attack": self.attack,
            "attempts": self.attempts,
            "failures": len(self.failures),
            "failure_lines": self.failures,
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
        }

    def print_report(self, out=sys.stdout):
        print(f"{self.attack}: {self.attempts} attempts, {len(self.failures)} failures "
              f"({self.seconds:.0f} s)", file=out)
        for line in self.notes:
            print(f"  note: {line}", file=out)
        for line in self.failures:
            print(f"  FAIL: {line}", file=out)


# ---------------------------------------------------------------------------------------------
# The binary.


def default_binary():
    for build in ("release", "debug"):
        path = os.path.join(REPO, "target", build, "campaignd")
        if os.access(path, os.X_OK):
            return path
    return os.path.join(REPO, "target", "release", "campaignd")


def add_common_args(parser):
    parser.add_argument("--bin", default=None,
                        help="the campaignd binary (default target/release/campaignd, else target/debug/campaignd)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folders (their paths are printed) for a closer look")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--seed", type=int, default=11, help="the random seed of the mutations")
    return parser


def resolve_binary(path):
    path = os.path.abspath(path or default_binary())
    if not os.access(path, os.X_OK):
        sys.exit(f"no campaignd binary at {path}: build one (cargo build) or pass --bin")
    return path


def clean_env(extra=None):
    """The environment without CAMPAIGND* and RUST_LOG, so the caller's shell changes nothing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGND") and k != "RUST_LOG"}
    env["RUST_BACKTRACE"] = "1"
    if extra:
        env.update(extra)
    return env


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Deployments.


def toml_str(value):
    return json.dumps(value)


def campaign_toml(cid, tenant, channels, regions, segments, start=SIM_START, days=600,
                  target=100000, budget=10000000.0, currency="USD", objective="purchases"):
    deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                             time.gmtime(iso_seconds(start) + days * 86400 - 1))
    segs = "\n".join(f'[[segments]]\nid = "{s}"\n' for s in segments)
    return (f'id = "{cid}"\ntenant = "{tenant}"\nobjective = "{objective}"\ntarget = {target}\n'
            f'start = "{start}"\ndeadline = "{deadline}"\n'
            f'channels = {json.dumps(channels)}\nregions = {json.dumps(regions)}\n\n'
            f'[budget]\ntotal = {budget}\ncurrency = "{currency}"\n\n{segs}\n{brief_toml(regions)}')


def brief_toml(regions):
    """A brief writing Korean for KR and English elsewhere, claiming one evidenced discount."""
    languages = {r: ("ko" if r == "KR" else "en") for r in regions}
    copy = {
        "ko": ('product = "학생 멤버십"\nmessages = ["학생증 하나로 가입 끝"]\n'
               'claims = [{ kind = "discount", text = "전 구매 10% 할인", evidence = "terms" }]\n'),
        "en": ('product = "Autumn Bundle"\nmessages = ["Three favorites in one box"]\n'
               'claims = [{ kind = "discount", text = "10% off", evidence = "terms" }]\n'),
    }
    pairs = ", ".join(f'{r} = "{l}"' for r, l in languages.items())
    text = (f'[brief]\nproduct = "A product"\nlanding_url = "https://example.com/p"\n'
            f'languages = {{ {pairs} }}\n')
    for code in sorted(set(languages.values())):
        text += f"[brief.copy.{code}]\n{copy[code]}"
    return text


def iso_seconds(text):
    import calendar
    return calendar.timegm(time.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z"))


def iso_day(day, start=SIM_START):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(iso_seconds(start) + day * 86400))


# Campaigns of three tenants: an organization (acme) with a client (acme/kr_retail), and globex.
US_CAMPAIGN = ("globex_us", "globex", ["email", "social"], ["US"], ["past_buyers", "lookalikes"])
KR_CAMPAIGN = ("kr_retail_search", "acme/kr_retail", ["search", "social"], ["KR"], ["students"])
ACME_CAMPAIGN = ("acme_us", "acme", ["social", "search"], ["US"], ["everyone"])


class Deployment:
    """A deployment in a fresh temporary folder: `config/campaignd.toml`, `config/campaigns/`,
    `config/tenants/` and `agents/` (copied from the repository), `tokens.toml` (mode 600) and
    `data/`. The daemon runs with this folder as its working directory."""

    def __init__(self, name, campaigns=(US_CAMPAIGN,), source="api", factor=3600.0,
                 shutdown_timeout=10, extra_config="", keep=False, campaign_days=600):
        self.dir = tempfile.mkdtemp(prefix=f"campaignd-attack-{name}-")
        self.keep = keep
        self.port = free_port()
        self.operator = "op-" + secrets.token_hex(16)
        self.tenants = {}  # tenant id -> token
        self.campaigns = {}  # campaign id -> tenant
        for cid, tenant, *_ in campaigns:
            self.campaigns[cid] = tenant
        for tenant in sorted(set(self.campaigns.values()) | {"acme", "globex"}):
            self.tenants[tenant] = "tn-" + secrets.token_hex(16)
        self.source = source
        self.factor = factor
        self.shutdown_timeout = shutdown_timeout
        self.extra_config = extra_config
        os.makedirs(self.path("config/campaigns"))
        shutil.copytree(os.path.join(REPO, "config/tenants"), self.path("config/tenants"))
        shutil.copytree(os.path.join(REPO, "agents"), self.path("agents"))
        os.makedirs(self.path("data"))
        for cid, tenant, channels, regions, segments in campaigns:
            with open(self.path(f"config/campaigns/{cid}.toml"), "w") as f:
                f.write(campaign_toml(cid, tenant, channels, regions, segments, days=campaign_days))
        self.write_tokens()
        self.write_config()

    def path(self, relative):
        return os.path.join(self.dir, relative)

    def write_tokens(self):
        lines = [f'[[tokens]]\nname = "operator"\ntoken = "{self.operator}"\n']
        for tenant, token in sorted(self.tenants.items()):
            name = "tenant-" + tenant.replace("/", "-")
            lines.append(f'[[tokens]]\nname = "{name}"\ntoken = "{token}"\ntenant = "{tenant}"\n')
        path = self.path("tokens.toml")
        with open(path, "w") as f:
            f.write("\n".join(lines))
        os.chmod(path, 0o600)

    def config_text(self):
        clock = f'mode = "accelerated"\nfactor = {self.factor}\nstart = {SIM_START}\n'
        return (
            "[daemon]\n"
            'data_dir = "data"\n'
            f"shutdown_timeout_secs = {self.shutdown_timeout}\n"
            'agents_dir = "agents"\n'
            'campaigns_dir = "config/campaigns"\n\n'
            '[log]\nformat = "json"\nfilter = "info"\n\n'
            f"[clock]\n{clock}\n"
            f'[market]\nsource = "{self.source}"\nseed = 42\n\n'
            f'[api]\nlisten = "127.0.0.1:{self.port}"\ntokens_file = "tokens.toml"\n'
            + self.extra_config
        )

    def write_config(self):
        with open(self.path("config/campaignd.toml"), "w") as f:
            f.write(self.config_text())

    def cleanup(self):
        if self.keep:
            print(f"  kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def run_command(binary, args, cwd, env=None, timeout=60, limit_nofile=None):
    """Runs a campaignd command to its end; returns (code, stdout, stderr), code None on timeout."""
    argv = [binary, *args]
    if limit_nofile:
        argv = ["prlimit", f"--nofile={limit_nofile}:{limit_nofile}", "--", *argv]
    try:
        done = subprocess.run(argv, cwd=cwd, env=clean_env(env), capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        return done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        err = (e.stderr or b"").decode("utf-8", "replace")
        return None, out, err


class Daemon:
    """`campaignd run` of a deployment, its stderr collected by a thread."""

    def __init__(self, binary, deployment, env=None, limit_nofile=None, args=()):
        self.binary = binary
        self.deployment = deployment
        argv = [binary, "--config", "config/campaignd.toml", "run", *args]
        if limit_nofile:
            argv = ["prlimit", f"--nofile={limit_nofile}:{limit_nofile}", "--", *argv]
        self.log_path = deployment.path(f"daemon-{time.time_ns()}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=deployment.dir, env=clean_env(env),
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self.port = deployment.port

    def text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def panics(self):
        return [line for line in self.text().splitlines() if PANIC.search(line)]

    def running(self):
        return self.proc.poll() is None

    def wait_ready(self, within=120.0, path="/healthz"):
        """Waits until `path` answers 200; False if the process exits or time runs out."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self.running():
                return False
            try:
                r = request(self.port, "GET", path, timeout=2)
                if r.status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def kill9(self):
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def terminate(self, within):
        """SIGTERM; returns (exit code or None if it did not exit within `within`, seconds)."""
        started = time.monotonic()
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            code = None
        elapsed = time.monotonic() - started
        if code is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        return code, elapsed

    def wait_exit(self, within):
        try:
            return self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.running():
            self.terminate(self.deployment.shutdown_timeout + 10)
        elif not self.log.closed:
            self.log.close()


# ---------------------------------------------------------------------------------------------
# HTTP.


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    def text(self):
        return self.body.decode("utf-8", "replace")

    def error_code(self):
        """The `error.code` of a JSON error body with a non-empty message, else None."""
        data = self.json()
        if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
            return None
        err = data["error"]
        if not isinstance(err.get("code"), str) or not err["code"]:
            return None
        if not isinstance(err.get("message"), str) or not err["message"].strip():
            return None
        return err["code"]

    def header(self, name):
        return self.headers.get(name.lower())


def request(port, method, path, token=None, body=None, headers=None, timeout=30):
    """One request on a new connection through http.client."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def raw_request(port, data, timeout=10):
    """Sends `data` as it is on a new connection and reads one answer (a Response, or None when
    the server closed the connection without one). The connection is not half-closed: the server
    would take that for a client gone away."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        raw = b""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                raw += chunk
                if complete(raw):
                    break
        except (socket.timeout, ConnectionResetError):
            pass
    return parse_raw(raw)


def complete(raw):
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    lower = head.lower()
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", lower)
    if m:
        return len(rest) >= int(m.group(1))
    if b"transfer-encoding: chunked" in lower:
        return rest.endswith(b"0\r\n\r\n")
    return False


def parse_raw(raw):
    if not raw:
        return None
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        return Response(0, {}, raw)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    body = rest
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = dechunk(rest)
    elif "content-length" in headers:
        try:
            body = rest[: int(headers["content-length"])]
        except ValueError:
            pass
    return Response(status, headers, body)


def dechunk(rest):
    out = b""
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2:]
    return out


def healthy(port, timeout=5):
    try:
        return request(port, "GET", "/healthz", timeout=timeout).status == 200
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# What a campaign's experiment knows.


def experiment_arms(port, token, campaign, timeout=10):
    """The (channel, segment, variant) arms of the campaign's experiment decisions so far."""
    arms = set()
    cursor = None
    for _ in range(50):
        path = f"/v1/campaigns/{campaign}/decisions?agent=optimization&limit=1000"
        if cursor:
            path += f"&cursor={cursor}"
        r = request(port, "GET", path, token=token, timeout=timeout)
        if r.status != 200:
            break
        page = r.json() or {}
        for d in page.get("decisions", []):
            if d.get("kind") == "experiment":
                for arm in (d.get("choice") or {}).get("arms", []):
                    arms.add((arm.get("channel"), arm.get("segment"), arm.get("variant")))
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return sorted(arms)


def wait_for_arms(port, token, campaign, within=180.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            arms = experiment_arms(port, token, campaign)
            if arms:
                return arms
        except OSError:
            pass
        time.sleep(0.5)
    return []


def observation(arm, day, impressions=1000, clicks=40, conversions=2, spend=25.0, campaign=None):
    channel, segment, variant = arm
    item = {
        "channel": channel,
        "variant": variant,
        "window_start": iso_day(day),
        "window_end": iso_day(day + 1),
        "impressions": impressions,
        "clicks": clicks,
        "conversions": conversions,
        "spend": spend,
    }
    if segment:
        item["segment"] = segment
    if campaign:
        item["campaign"] = campaign
    return item


def kb_export(binary, deployment, timeout=120):
    """Every record of the deployment's knowledge base (the daemon stopped), as parsed JSON."""
    code, out, err = run_command(binary, ["--config", "config/campaignd.toml", "kb", "export"],
                                 deployment.dir, timeout=timeout)
    records = []
    for line in out.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pass
    return code, records, err


def main_wrapper(name, run, configure=None):
    """A script's `main`: parses its flags, runs the attack, prints the result and exits 1 on any
    failure."""
    parser = argparse.ArgumentParser(description=run.__doc__)
    add_common_args(parser)
    if configure:
        configure(parser)
    args = parser.parse_args()
    args.bin = resolve_binary(args.bin)
    result = run(args).finish()
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        result.print_report()
    sys.exit(1 if result.failures else 0)


def in_thread(target, *args):
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t
