"""WebSocket benchmark: one command, every figure of the README's table.

    .venv/bin/python bench/ws_bench.py [--quick]

Starts, in this order, the bare websockets broadcast server (the machine's ceiling), the chat
server under Daphne (one process) and under Uvicorn (two worker processes), each against the
same PostgreSQL, Redis and a SecantusDB it starts; drives each from a separate load-generator
process (bench/loadgen.py); and reports fan-out at the knee for rooms of 10, 100 and 1,000,
latency at half the knee, send->ack, and RSS per held connection. Any lost, duplicated or
reordered message fails the run (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
BENCH_DB = "chat_bench"
DELIVERY_STEPS = [
    250,
    500,
    1_000,
    2_000,
    3_000,
    4_500,
    7_000,
    10_000,
    15_000,
    22_000,
    33_000,
    50_000,
    75_000,
    110_000,
    165_000,
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# One process of each ASGI server as the HTTP benchmarks run it (search_bench, upload_bench).
HTTP_SERVERS = {
    "daphne": ["-m", "daphne", "-v", "0", "-p", "{port}", "chatproject.asgi:application"],
    "uvicorn": ["-m", "uvicorn", "--log-level", "warning", "--port", "{port}", "chatproject.asgi:application"],
}


def http_server_command(name: str, port: int) -> list[str]:
    return [sys.executable, *(arg.format(port=port) for arg in HTTP_SERVERS[name])]


def ensure_bench_database(name: str = BENCH_DB) -> None:
    """Services running and a bench's own PostgreSQL database present."""
    subprocess.run([str(ROOT / "scripts" / "ensure_services.sh")], check=True, stdout=subprocess.DEVNULL)
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {name}")


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def tree_rss(pid: int) -> int:
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.procs: list[subprocess.Popen[bytes]] = []
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.tokens_file = RESULTS / "tokens.json"
        self.mongo_port = free_port()
        self.env = {
            **os.environ,
            "SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789abcdef",
            "HTTPS": "false",  # plain http on loopback
            "POSTGRESQL_URL": f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}",
            "REDIS_URL": "redis://127.0.0.1:6379/8",
            "MONGODB_URL": f"mongodb://127.0.0.1:{self.mongo_port}",
            "MONGODB_NAME": "bench",
            "RATELIMIT_ENABLE": "false",
            "ACCESS_TOKEN_EXPIRE_MINUTES": "240",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }

    def spawn(self, cmd: list[str], log: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=(RESULTS / log).open("wb"), stderr=subprocess.STDOUT, **kwargs
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def setup(self) -> None:
        ensure_bench_database()
        self.spawn([PY, "-m", "secantus", "--port", str(self.mongo_port), "--storage-path", ":memory:"], "mongo.log")
        wait_port(self.mongo_port)
        time.sleep(1.5)
        subprocess.run(["redis-cli", "-n", "8", "flushdb"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env, check=True)
        subprocess.run(
            [PY, "manage.py", "ensure_indexes"], cwd=ROOT, env=self.env, check=True, stdout=subprocess.DEVNULL
        )
        with self.tokens_file.open("w") as out:
            subprocess.run(
                [
                    PY,
                    "bench/seed.py",
                    str(self.args.connections),
                    ",".join(map(str, self.args.sizes)),
                    str(getattr(self.args, "spread", 0)),
                ],
                cwd=ROOT,
                env=self.env,
                check=True,
                stdout=out,
            )
        seeded = json.loads(self.tokens_file.read_text())
        self.rooms = seeded["rooms"]
        self.spread_rooms: list[int] = seeded["spread"]

    def server_command(self, kind: str, port: int) -> list[str]:
        if kind == "bare":
            return [PY, "bench/bare_server.py", str(port)]
        if kind == "daphne":
            return [PY, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port), "chatproject.asgi:application"]
        return [
            PY,
            "-m",
            "uvicorn",
            "chatproject.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(self.args.uvicorn_workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--ws",
            self.args.uvicorn_ws,
            "--no-access-log",
            "--log-level",
            "warning",
            "--ws-ping-interval",
            "0",
        ]

    def start_server(self, kind: str) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        proc = self.spawn(self.server_command(kind, port), f"server-{kind}.log")
        if kind == "bare":
            wait_port(port)
        else:
            wait_http(f"http://127.0.0.1:{port}/health")
            time.sleep(1.0 if kind == "daphne" else 3.0)  # uvicorn: let both workers boot
        return proc, port

    def fanout(self, kind: str, port: int, size: int) -> dict[str, Any]:
        room = self.rooms[str(size)]
        # At least three messages a step, so a percentile means something.
        rates = [round(d / size, 2) for d in DELIVERY_STEPS if d / size * self.args.step_seconds >= 3]
        cmd = [
            PY,
            "bench/loadgen.py",
            "fanout",
            "--url",
            f"ws://127.0.0.1:{port}/api/ws/{room}",
            "--tokens",
            str(self.tokens_file),
            "--members",
            str(size),
            "--senders",
            str(min(10, size)),
            "--rates",
            ",".join(map(str, rates)),
            "--step-seconds",
            str(self.args.step_seconds),
        ]
        done = subprocess.run(cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError("loadgen failed (its output is above)")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        knee = result["knee"] or {}
        print(f"  {kind:7s} room {size:>5}: knee {knee.get('deliveries_per_s', 0):>8} deliveries/s", flush=True)
        return result

    def hold(self, kind: str, proc: subprocess.Popen[bytes], port: int, path: str | None = None) -> dict[str, Any]:
        """Open and hold --connections sockets (room sockets of the biggest room, or `path`)."""
        path = path or f"/api/ws/{self.rooms[str(self.args.connections)]}"
        time.sleep(1)
        before = tree_rss(proc.pid)
        cmd = [
            PY,
            "bench/loadgen.py",
            "hold",
            "--url",
            f"ws://127.0.0.1:{port}{path}",
            "--tokens",
            str(self.tokens_file),
            "--count",
            str(self.args.connections),
        ]
        gen = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert gen.stdout is not None
        line = gen.stdout.readline()
        if not line:
            gen.kill()
            errors = gen.stderr.read().strip().splitlines() if gen.stderr else []
            raise RuntimeError(errors[-1] if errors else "the load generator exited")
        held = json.loads(line)
        time.sleep(2)
        after = tree_rss(proc.pid)
        gen.send_signal(signal.SIGTERM)
        gen.wait(timeout=60)
        per = (after - before) / max(1, held["held"])
        self.wait_quiet(proc)
        print(f"  {kind:7s} held {held['held']} sockets in {held['seconds']} s, {per / 1024:.1f} KiB each", flush=True)
        return {**held, "rss_before_mb": before / 2**20, "rss_after_mb": after / 2**20, "rss_per_conn_kib": per / 1024}

    def wait_quiet(self, proc: subprocess.Popen[bytes], limit: float = 120) -> None:
        """Let the server finish closing sockets before the next measurement starts."""
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            busy = sum(p.cpu_percent(interval=None) for p in tree)
            time.sleep(1)
            busy = sum(p.cpu_percent(interval=None) for p in tree)
            if busy < 15:
                return

    def run(self) -> dict[str, Any]:
        self.setup()
        report: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}",
            "servers": {},
        }
        for kind in self.args.servers:
            print(f"{kind}:", flush=True)
            proc, port = self.start_server(kind)
            try:
                entry: dict[str, Any] = {"fanout": {}}
                try:
                    entry["hold"] = self.hold(kind, proc, port)  # first: RSS growth from a fresh server
                except RuntimeError as exc:
                    print(f"  {kind:7s} hold FAILED: {exc}", flush=True)
                    entry["hold"] = {"error": str(exc)[-500:]}
                    self.wait_quiet(proc)
                for size in [] if self.args.hold_only else self.args.sizes:
                    entry["fanout"][str(size)] = self.fanout(kind, port, size)
                report["servers"][kind] = entry
            finally:
                self.stop(proc)
        return report

    def close(self) -> None:
        for proc in self.procs:
            self.stop(proc)


def table(report: dict[str, Any]) -> str:
    servers = report["servers"]
    bare = servers.get("bare", {}).get("fanout", {})
    lines = [
        f"Machine: {report['machine']}; run {report['date']}.",
        "",
        "| server | room | knee deliveries/s | ratio to ceiling | p50 / p99 / p99.9 ms at half knee | ack p50 / p99 ms "
        "| lost / dup / reordered |",
        "| --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for kind, entry in servers.items():
        for size, result in entry["fanout"].items():
            knee = result["knee"] or {}
            half = result["half_knee"] or {}
            ceiling = (bare.get(size, {}).get("knee") or {}).get("deliveries_per_s")
            ratio = f"{knee.get('deliveries_per_s', 0) / ceiling:.2f}" if ceiling else "-"
            bad = [sum(s[k] for s in result["steps"] if s["passed"]) for k in ("lost", "duplicated", "reordered")]
            lines.append(
                f"| {kind} | {size} | {knee.get('deliveries_per_s', 0):,} | {ratio} "
                f"| {half.get('p50_ms', '-')} / {half.get('p99_ms', '-')} / {half.get('p999_ms', '-')} "
                f"| {half.get('ack_p50_ms', '-')} / {half.get('ack_p99_ms', '-')} | {bad[0]} / {bad[1]} / {bad[2]} |"
            )
    lines += [
        "",
        "| server | sockets held | seconds to open | RSS before -> after (MiB) | RSS per connection |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    for kind, entry in servers.items():
        hold = entry.get("hold")
        if hold and "error" in hold:
            lines.append(f"| {kind} | failed: {hold['error'][-80:]} | | | |")
        elif hold:
            lines.append(
                f"| {kind} | {hold['held']:,} | {hold['seconds']} | {hold['rss_before_mb']:.0f} -> "
                f"{hold['rss_after_mb']:.0f} | {hold['rss_per_conn_kib']:.1f} KiB |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", nargs="+", default=["bare", "uvicorn", "daphne"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--step-seconds", type=float, default=3.0)
    parser.add_argument("--uvicorn-workers", type=int, default=1)
    parser.add_argument("--uvicorn-ws", default="websockets-sansio")
    parser.add_argument("--hold-only", action="store_true", help="only open and hold --connections sockets")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    bench = Bench(args)
    try:
        report = bench.run()
    finally:
        bench.close()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"ws-{stamp}.json").write_text(json.dumps(report, indent=2))
    print()
    print(table(report))
    integrity = all(r["integrity_ok"] for e in report["servers"].values() for r in e["fanout"].values())
    if not integrity:
        print("\nFAILED: a message was lost, duplicated or reordered at or below the knee.")
        sys.exit(1)


if __name__ == "__main__":
    main()
