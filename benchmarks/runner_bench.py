"""Runner benchmark: events → completed runs per second, latency, memory with many waiting runs.

    .venv/bin/python benchmarks/runner_bench.py [--events 4000] [--batch 50] [--repeat 3]
        [--durability full,normal]

Starts `flowctl runner serve` as a subprocess on 127.0.0.1 once per runner.yaml
`durability` setting (`full`: WAL + synchronous=FULL, the default; `normal`: WAL +
synchronous=NORMAL; both with group commit), applies a bundle with a 3-step
flow without external I/O (update_record, log, create_task), and measures, for
each setting:

1. completed runs per second at 1 and 16 concurrent clients, posting one
   event per request and batches of `--batch` events per request (every run
   completes inside the transaction its event commits in, so "answered" means
   "completed and on disk"; the count is checked against /v1/stats);
2. p50/p99 latency from posting an event to its answer, which the runner
   sends after the commit that includes the run's first action;
3. the runner process's CPU time (user + system, all threads) per event:
   on a shared machine the commit's fsync latency varies with other I/O, the
   CPU cost does not, so it says what the runner itself spends;
4. a raw SQLite loop inserting the same number of rows of the same average
   size per event, with the same synchronous setting, committing in groups of
   the size the runner's group commit averaged, printed as a ratio;
5. once: resident memory of the runner process with 10,000 waiting runs.

`--repeat N` runs every throughput mode N times (fresh events each time) and
prints the median of each figure. The settings take turns within each round
(full's four modes, then normal's, then the next round), so a change in the
machine's disk load during the benchmark falls on both alike.

Prints figures; asserts nothing (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx

FLOWCTL = str(Path(sys.executable).parent / "flowctl")

CONTACT = {
    "kind": "object",
    "name": "contact",
    "fields": {"note": {"type": "string"}, "email": {"type": "email"}},
}
TOUCH = {
    "kind": "flow",
    "name": "touch",
    "object": "contact",
    "trigger": {"type": "event", "name": "touch"},
    "steps": [
        {"id": "mark", "action": "update_record", "set": {"note": "touched"}},
        {"id": "say", "action": "log", "message": "touched {{ record.id }}"},
        {"id": "todo", "action": "create_task", "subject": "Follow up {{ record.id }}", "assignee": "li.lei"},
    ],
}
PARKED = {
    "kind": "flow",
    "name": "parked",
    "object": "contact",
    "trigger": {"type": "event", "name": "park"},
    "steps": [{"id": "sleep", "wait": {"for": "7d"}}, {"id": "wake", "action": "log", "message": "awake"}],
}
BUNDLE = {
    "project": "bench",
    "resources": {"object": {"contact": CONTACT}, "flow": {"touch": TOUCH, "parked": PARKED}},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DURABILITIES = ("full", "normal")
SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}  # what each setting sets (flowctl.store.sqlite)


class Runner:
    started: ClassVar[list[Runner]] = []  # stopped on the way out, also when the benchmark fails half-way

    def __init__(self, base: Path, durability: str = "full") -> None:
        self.base = base
        self.durability = durability
        base.mkdir(parents=True, exist_ok=True)
        # `runner serve` reads ./runner.yaml: the setting under test, as a user would configure it.
        (base / "runner.yaml").write_text(f"durability: {durability}\n")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWCTL_")}
        self.proc = subprocess.Popen(
            [FLOWCTL, "runner", "serve", "--port", str(self.port), "--log-level", "warning"],
            cwd=base,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        Runner.started.append(self)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise SystemExit("the runner did not start")
        self.token = (base / ".flowctl" / "admin.token").read_text().strip()
        self.headers = {"Authorization": f"Bearer {self.token}"}

    @property
    def db(self) -> Path:
        return self.base / ".flowctl" / "runner.db"

    def cpu_seconds(self) -> float:
        """User + system CPU time of the runner process so far (every thread)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def get(self, path: str) -> Any:
        return httpx.get(self.url + path, headers=self.headers, timeout=60).json()

    def post(self, path: str, body: Any) -> Any:
        r = httpx.post(self.url + path, json=body, headers=self.headers, timeout=120)
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


def touch(i: int) -> dict[str, Any]:
    return {"type": "event", "name": "touch", "object": "contact", "record": {"id": f"c-{i}"}}


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams.

    httpx costs about 0.7 ms of CPU per request; on a 2-core machine that is
    CPU taken from the runner being measured. This client only writes a POST
    and reads a Content-Length answer (what the runner sends), at a fraction
    of the cost, so the figures describe the runner rather than the client.
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.head = (
            f"POST /v1/events HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def drive(
    url: str, headers: dict[str, str], events: list[dict[str, Any]], clients: int, batch: int
) -> tuple[float, list[float]]:
    """Post `events` from `clients` concurrent clients, `batch` per request. Returns (seconds, latencies)."""
    chunks = [events[i : i + batch] for i in range(0, len(events), batch)]
    bodies = [json.dumps(c[0] if batch == 1 else c).encode() for c in chunks]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    latencies: list[float] = []
    host_port = url.split("//", 1)[1]
    host, port = host_port.split(":")
    token = headers["Authorization"].split(" ", 1)[1]

    async def client() -> None:
        http = RawClient(host, int(port), token)
        try:
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                status, answer = await http.post(body)
                latencies.append(time.perf_counter() - started)
                if status != 202:
                    raise SystemExit(f"event refused: {status} {answer[:300]!r}")
        finally:
            await http.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, latencies


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def raw_sqlite(
    rows_per_event: float, bytes_per_row: int, events: int, group: int, path: Path, synchronous: str
) -> float:
    """Events/s for a plain sqlite3 loop inserting the same rows, same durability, same commit grouping."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("CREATE TABLE rows (n INTEGER PRIMARY KEY, k TEXT NOT NULL, data TEXT NOT NULL)")
    conn.execute("CREATE INDEX rows_k ON rows (k)")
    payload = json.dumps({"x": "y" * max(0, bytes_per_row - 10)})
    per_event = max(1, round(rows_per_event))
    started = time.perf_counter()
    for first in range(0, events, group):
        conn.execute("BEGIN IMMEDIATE")
        for e in range(first, min(events, first + group)):
            for r in range(per_event):
                conn.execute("INSERT INTO rows (k, data) VALUES (?, ?)", (f"e{e}-{r}", payload))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return events / elapsed


def table_rows(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    total = size = 0
    for table in (
        "records",
        "timeline",
        "runs",
        "step_attempts",
        "tasks",
        "trace",
        "events",
        "processed_events",
    ):
        n, b = conn.execute(f"SELECT count(*), coalesce(sum(length(data)), 0) FROM {table}").fetchone()
        total += n
        size += b
    conn.close()
    return total, size


def prepare(runner: Runner, contacts: int) -> None:
    """Apply the bundle and create the contacts the measured events touch (not measured)."""
    httpx.put(
        f"{runner.url}/v1/bundle",
        json={"bundle": BUNDLE, "expected_version": 0},
        headers=runner.headers,
        timeout=60,
    ).raise_for_status()
    for i in range(0, contacts, 500):
        runner.post(
            "/v1/events",
            [
                {"type": "record_created", "object": "contact", "record": {"id": f"c-{j}"}}
                for j in range(i, min(contacts, i + 500))
            ],
        )


@dataclass(frozen=True)
class Measure:
    rate: float  # completed runs/s
    p50: float  # ms
    p99: float  # ms
    group: float  # engine calls per commit
    cpu: float  # runner CPU µs per event

    def line(self, clients: int, batch: int) -> str:
        return (
            f"{clients:>7} {batch:>11} {self.rate:>8.0f} {self.p50:>7.1f} {self.p99:>7.1f}"
            f" {self.group:>12.1f} {self.cpu:>12.0f}"
        )

    @staticmethod
    def median(runs: list[Measure]) -> Measure:
        return Measure(
            *(statistics.median(getattr(r, f) for r in runs) for f in ("rate", "p50", "p99", "group", "cpu"))
        )


def throughput(runner: Runner, offset: int, n: int, clients: int, batch: int) -> Measure:
    """Post `n` touch events (contacts offset..offset+n) and measure the runner."""
    events = [touch(i) for i in range(offset, offset + n)]
    before = runner.get("/v1/metrics")["writer"]
    cpu_before = runner.cpu_seconds()
    seconds, lat = asyncio.run(drive(runner.url, runner.headers, events, clients, batch))
    cpu = (runner.cpu_seconds() - cpu_before) / n * 1e6
    after = runner.get("/v1/metrics")["writer"]
    group = (after["jobs"] - before["jobs"] - 1) / max(1, after["batches"] - before["batches"] - 1)
    return Measure(n / seconds, pct(lat, 50) * 1000, pct(lat, 99) * 1000, group, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=4000, help="events per throughput run")
    parser.add_argument("--batch", type=int, default=50, help="events per request in the batched runs")
    parser.add_argument("--waiting", type=int, default=10_000, help="waiting runs for the memory figure")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each throughput mode (medians printed)"
    )
    parser.add_argument(
        "--durability",
        default=",".join(DURABILITIES),
        help="runner.yaml durability settings to measure, comma-separated (default: full,normal)",
    )
    args = parser.parse_args()
    settings = [d.strip() for d in args.durability.split(",") if d.strip()]
    unknown = [d for d in settings if d not in DURABILITIES]
    if unknown or not settings:
        parser.error(f"--durability takes {' and/or '.join(DURABILITIES)}, not {args.durability!r}")

    with tempfile.TemporaryDirectory(prefix="flowctl-bench-") as tmp:
        try:
            measure_all(Path(tmp), args, settings)
        finally:
            for runner in Runner.started:
                runner.stop()


def measure_all(base: Path, args: argparse.Namespace, settings: list[str]) -> None:
    n = args.events
    modes = [(1, 1), (16, 1), (1, args.batch), (16, args.batch)]
    rounds = max(1, args.repeat)
    runners = {d: Runner(base / d, d) for d in settings}
    before_rows: dict[str, tuple[int, int]] = {}
    for durability, runner in runners.items():
        prepare(runner, contacts=n * len(modes) * rounds)
        before_rows[durability] = table_rows(runner.db)
    print(f"runner: 3-step flow (update_record, log, create_task), {n} events per run, SQLite WAL")
    header = (
        f"{'durability':>10} {'clients':>7} {'per request':>11} {'runs/s':>8} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'commit group':>12} {'CPU µs/event':>12}"
    )
    print(header)
    rows: dict[str, dict[tuple[int, int], list[Measure]]] = {d: {} for d in settings}
    # Each runner has its own contacts c-0 … c-(contacts-1); each run touches the next n of them.
    offset = dict.fromkeys(settings, 0)
    for _ in range(rounds):
        for durability, runner in runners.items():
            for clients, batch in modes:
                measure = throughput(runner, offset[durability], n, clients, batch)
                offset[durability] += n
                rows[durability].setdefault((clients, batch), []).append(measure)
                print(f"{durability:>10} {measure.line(clients, batch)}")
    baselines: dict[str, dict[tuple[int, int], float]] = {}
    for durability, runner in runners.items():
        stats = {f["flow"]: f for f in runner.get("/v1/stats")["flows"]}
        completed = stats["touch"]["succeeded"]
        total = n * len(modes) * rounds
        if completed != total:
            raise SystemExit(f"{durability}: {completed} touch runs completed for {total} events")
        rows_after, bytes_after = table_rows(runner.db)
        runner.stop()
        rows_before, bytes_before = before_rows[durability]
        rows_per_event = (rows_after - rows_before) / total
        bytes_per_row = int((bytes_after - bytes_before) / max(1, rows_after - rows_before))
        print(
            f"{durability}: {completed} completed touch runs of {total} events (each answer was sent after "
            f"its run's commit); {rows_per_event:.1f} rows/event of ~{bytes_per_row} B"
        )
        baselines[durability] = {
            mode: raw_sqlite(
                rows_per_event,
                bytes_per_row,
                n,
                max(1, round(statistics.median(m.group for m in runs))),
                base / f"raw-{durability}-{k}.db",
                SYNCHRONOUS[durability],
            )
            for k, (mode, runs) in enumerate(rows[durability].items())
        }
    for durability in settings:
        print()
        print(
            f"durability: {durability} (WAL, synchronous={SYNCHRONOUS[durability]})"
            + (f", median of {rounds} runs" if rounds > 1 else "")
            + "; raw = a sqlite3 loop inserting the same rows with the same synchronous and commit groups"
        )
        print(
            f"{'clients':>7} {'per request':>11} {'runs/s':>8} {'p50 ms':>7} {'p99 ms':>7}"
            f" {'commit group':>12} {'CPU µs/event':>12} {'raw events/s':>12} {'of raw':>6}"
        )
        for (clients, batch), runs in rows[durability].items():
            med = Measure.median(runs)
            raw = baselines[durability][(clients, batch)]
            print(f"{med.line(clients, batch)} {raw:>12.0f} {med.rate / raw:>6.2f}")
        single = [Measure.median(rows[durability][(c, 1)]) for c in (1, 16)]
        met = all(m.rate >= 1000 and m.p99 < 50 for m in single)
        print(
            "target (>= 1,000 runs/s and p99 < 50 ms at 1 and 16 clients, one event per request): "
            + ("met" if met else "not met")
        )
    print()

    parked = Runner(base / "memory", settings[0])
    prepare(parked, contacts=0)
    rss_start = parked.rss_mib()
    w = args.waiting
    for i in range(0, w, 500):
        parked.post(
            "/v1/events",
            [
                {"type": "record_created", "object": "contact", "record": {"id": f"p-{j}"}}
                for j in range(i, min(w, i + 500))
            ],
        )
        parked.post(
            "/v1/events",
            [
                {"type": "event", "name": "park", "object": "contact", "record": {"id": f"p-{j}"}}
                for j in range(i, min(w, i + 500))
            ],
        )
    waiting = parked.get("/v1/metrics")["gauges"]["runs"].get("waiting", 0)
    time.sleep(1)
    print(
        f"memory (durability {settings[0]}): runner RSS {rss_start:.0f} MiB at start, "
        f"{parked.rss_mib():.0f} MiB with {waiting} waiting runs"
    )
    _, latency = asyncio.run(
        drive(
            parked.url,
            parked.headers,
            [
                {"type": "event", "name": "park", "object": "contact", "record": {"id": f"p-{j}"}}
                for j in range(200)
            ],
            1,
            1,
        )
    )
    print(
        f"  single-event latency with {waiting} waiting runs: p50 {statistics.median(latency) * 1000:.1f} ms, "
        f"p99 {pct(latency, 99) * 1000:.1f} ms"
    )
    parked.stop()


if __name__ == "__main__":
    main()
