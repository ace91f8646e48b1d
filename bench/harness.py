"""What the Python benchmark scripts share (bench/revocation-latency, bench/client-auth):
paths, starting and stopping `tessera serve` on a fresh database per backend, the CLI,
and the facts about the machine a result is recorded with. Everything stays on 127.0.0.1
and every step is bounded in time."""

import base64
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESSERA = os.path.join(ROOT, "target", "release", "tessera")
BENCH = os.path.join(ROOT, "target", "release", "tessera-bench")
RESULTS = os.path.join(ROOT, "bench", "results")
AUDIENCE = "https://api.example.com"
REDIRECT_URI = "http://127.0.0.1:9/cb"  # never contacted: redirects are read, not followed
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def log(message):
    print(f"== {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_seconds(pid):
    """User + system CPU time of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(process, grace=30):
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def psql(url, sql):
    subprocess.run(["psql", url, "-qtAc", sql], check=True, capture_output=True, text=True, timeout=60)


def cli(env, *args, stdin=None):
    done = subprocess.run([TESSERA, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"tessera {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def wait_ready(port, server, work, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not become ready; see {work}/server.log")
        time.sleep(0.1)


def server_env(name, port, database_url, work, extra=None):
    """The settings of one leg's server and CLI: a fresh key-encryption key and keys
    directory, log level warn. Tessera refuses unknown TESSERA_* variables, so none of the
    caller's are passed on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update({
        "TESSERA_BIND": f"127.0.0.1:{port}",
        "TESSERA_ISSUER": f"http://127.0.0.1:{port}",
        "TESSERA_DATABASE_URL": database_url,
        "TESSERA_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "TESSERA_KEYS_DIR": f"{work}/keys-{name}",
        "TESSERA_LOG__FILTER": "warn",
    })
    env.update(extra or {})
    return env


@contextlib.contextmanager
def serve(name, env, work, started):
    """`tessera serve` until the block ends; yields the process once /readyz answers."""
    port = int(env["TESSERA_BIND"].rsplit(":", 1)[1])
    log(f"{name}: tessera serve on {env['TESSERA_ISSUER']}")
    with open(f"{work}/server-{name}.log", "w") as out:
        server = subprocess.Popen([TESSERA, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=work)
    started.append(server)
    try:
        wait_ready(port, server, work)
        yield server
    finally:
        stop(server)


def server_log_errors(name, work):
    with open(f"{work}/server-{name}.log") as f:
        return [line.strip() for line in f if "ERROR" in line or "panic" in line][:10]


def build(skip):
    if not skip:
        log("cargo build --release -p tessera -p tessera-bench --bins")
        subprocess.run(["cargo", "build", "--release", "-p", "tessera", "-p", "tessera-bench", "--bins"],
                       cwd=ROOT, check=True)


def machine():
    """What a result file records about the run."""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip(),
        "nproc": os.cpu_count(),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "loadavg_start": loadavg(),
    }


def run_backends(backends, postgres_url, work, prefix, run_leg):
    """Calls run_leg(name, database_url) on a fresh database per backend and returns the
    legs. A PostgreSQL database is created on postgres_url and dropped afterwards, also when
    the leg fails."""
    legs = []
    for backend in backends:
        if backend == "sqlite":
            legs.append(run_leg("sqlite", f"sqlite://{work}/tessera.db"))
        elif backend == "postgres":
            database = f"{prefix}_{int(time.time())}_{os.getpid()}"
            psql(postgres_url, f"CREATE DATABASE {database}")
            try:
                legs.append(run_leg("postgres", f"{postgres_url.rsplit('/', 1)[0]}/{database}"))
            finally:
                try:
                    psql(postgres_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
                except (OSError, subprocess.SubprocessError) as error:
                    log(f"could not drop {database}: {error}")
        else:
            raise SystemExit(f"unknown backend {backend}")
    return legs
