"""The user stream against the per-room socket, in one run on one server.

    .venv/bin/python bench/ws_stream_bench.py [--connections 10000] [--rounds 2]

Starts SecantusDB and the chat server (Uvicorn, one worker: the production setup), seeds
--connections users and 50 rooms of 21 of them (bench/seed.py), then:
- spread: a sender posts over its user stream into the 50 rooms in turn; 20 readers, each in all
  50, listen on one user stream each or on 50 room sockets each (1,000 sockets). Alternating the
  two --rounds times, it reports send->deliver p50/p99 and the server's CPU time per delivery,
  and the stream's ratio to the room sockets (target: at most 1.2).
- hold: --connections authenticated user streams, and the server's RSS per socket.
Any lost, duplicated or reordered message fails the run (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.ws_bench import PY, RESULTS, ROOT, Bench


def cpu_seconds(pid: int) -> float:
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


class StreamBench(Bench):
    def spread_run(self, proc: subprocess.Popen[bytes], port: int, listen: str) -> dict[str, Any]:
        cmd = [
            PY,
            "bench/loadgen.py",
            "spread",
            "--base",
            f"ws://127.0.0.1:{port}",
            "--tokens",
            str(self.tokens_file),
            "--rooms",
            ",".join(map(str, self.spread_rooms)),
            "--listen",
            listen,
            "--rate",
            str(self.args.rate),
            "--seconds",
            str(self.args.seconds),
        ]
        gen = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, text=True)
        assert gen.stdout is not None
        if not gen.stdout.readline():  # {"ready": true}: every socket is open
            raise RuntimeError("the load generator exited before it was ready")
        cpu_before = cpu_seconds(proc.pid)
        line = gen.stdout.readline()
        cpu_after = cpu_seconds(proc.pid)
        gen.wait(timeout=120)
        if not line:
            raise RuntimeError("the load generator exited")
        result: dict[str, Any] = json.loads(line)
        result["cpu_ms_per_delivery"] = round((cpu_after - cpu_before) * 1000 / max(1, result["deliveries"]), 4)
        print(
            f"  {listen:6s} {result['sockets']:>5} sockets: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
            f"{result['cpu_ms_per_delivery']} ms CPU/delivery, lost {result['lost']}, "
            f"dup {result['duplicated']}, reordered {result['reordered']}",
            flush=True,
        )
        self.wait_quiet(proc)
        return result

    def run(self) -> dict[str, Any]:
        self.setup()
        report: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB",
            "rate_msgs_per_s": self.args.rate,
            "runs": [],
        }
        proc, port = self.start_server("uvicorn")
        try:
            for _ in range(self.args.rounds):
                for listen in ("rooms", "stream"):
                    report["runs"].append(self.spread_run(proc, port, listen))
            try:
                report["hold"] = self.hold("uvicorn", proc, port, path="/api/ws")
            except RuntimeError as exc:
                report["hold"] = {"error": str(exc)[-500:]}
        finally:
            self.stop(proc)
        by_mode: dict[str, dict[str, float]] = {}
        for listen in ("rooms", "stream"):
            runs = [r for r in report["runs"] if r["listen"] == listen]
            by_mode[listen] = {
                key: statistics.median(r[key] for r in runs) for key in ("p50_ms", "p99_ms", "cpu_ms_per_delivery")
            }
        report["median"] = by_mode
        report["ratio_stream_to_rooms"] = {
            key: round(by_mode["stream"][key] / by_mode["rooms"][key], 2) if by_mode["rooms"][key] else None
            for key in by_mode["rooms"]
        }
        return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=float, default=50.0, help="posts per second, spread over the 50 rooms")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    args.sizes = [10]
    args.spread = 50
    args.uvicorn_workers = 1
    args.uvicorn_ws = "websockets-sansio"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    bench = StreamBench(args)
    try:
        report = bench.run()
    finally:
        bench.close()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"ws-stream-{stamp}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("median", "ratio_stream_to_rooms", "hold")}, indent=2))
    clean = all(r["lost"] == 0 and r["duplicated"] == 0 and r["reordered"] == 0 for r in report["runs"])
    if not clean:
        print("\nFAILED: a message was lost, duplicated or reordered.")
        sys.exit(1)


if __name__ == "__main__":
    main()
