"""What ``abp-client proxy`` adds to each exchange.

Starts the reference server (a fresh database in a temporary directory) and
``abp-client proxy`` in front of it, both on 127.0.0.1 port 0, with the
proxy's output going to a file as it would to a terminal or a pipe. Then one
connection straight to the server and one through the proxy each do
``--number`` lockstep ``fnd`` exchanges (send a line, read its answer),
alternating in rounds so that both see the same machine load. Prints the
median and p99 round trip of each and the difference, in microseconds.

    python benchmarks/proxy_latency.py [--number 5000] [--json]
"""

from __future__ import annotations

import argparse
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conformance.harness.process import ServerProcess, reference_server_command

ROUND = 100  # exchanges per connection before switching to the other


def exchange_times(sock: socket.socket, count: int) -> list[float]:
    """Seconds per lockstep exchange on ``sock``."""
    request = b"fnd:bench-name\n"
    times = []
    for _ in range(count):
        started = time.perf_counter()
        sock.sendall(request)
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                raise RuntimeError("the connection closed")
            data += chunk
        times.append(time.perf_counter() - started)
    return times


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def start_proxy(upstream: int, output: Path) -> tuple[subprocess.Popen[str], int]:
    argv = [sys.executable, "-m", "reference_client", "proxy", "--listen", "127.0.0.1:0"]
    argv += ["--upstream", f"127.0.0.1:{upstream}"]
    with output.open("w", encoding="utf-8") as out:
        proxy = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, text=True)
    assert proxy.stderr is not None
    ready, _, _ = select.select([proxy.stderr], [], [], 10)
    if not ready:
        proxy.kill()
        raise RuntimeError("the proxy did not start")
    first = proxy.stderr.readline()
    return proxy, int(first.split("127.0.0.1:")[1].split(",")[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=5000, help="exchanges per connection")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="abp-proxy-bench-") as tmp:
        db = str(Path(tmp) / "book.sqlite3")
        with ServerProcess(reference_server_command("--db", db)) as server:
            proxy, port = start_proxy(server.port, Path(tmp) / "proxy.out")
            try:
                direct = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                proxied = socket.create_connection(("127.0.0.1", port), timeout=10)
                exchange_times(direct, 200)  # warm up both paths
                exchange_times(proxied, 200)
                plain: list[float] = []
                through: list[float] = []
                for _ in range(max(1, args.number // ROUND)):
                    plain += exchange_times(direct, ROUND)
                    through += exchange_times(proxied, ROUND)
                direct.close()
                proxied.close()
            finally:
                proxy.terminate()
                proxy.wait(10)
            lines = (Path(tmp) / "proxy.out").read_text(encoding="utf-8").count("\n")
    rows = [("direct", plain), ("through the proxy", through)]
    for name, values in rows:
        print(
            f"{name:18} median {statistics.median(values) * 1e6:7.1f} us"
            f"  p99 {percentile(values, 0.99) * 1e6:7.1f} us  ({len(values)} exchanges)"
        )
    added_median = (statistics.median(through) - statistics.median(plain)) * 1e6
    added_p99 = (percentile(through, 0.99) - percentile(plain, 0.99)) * 1e6
    print(f"added by the proxy: median {added_median:.1f} us, p99 {added_p99:.1f} us")
    print(f"(the proxy printed {lines} lines to its output file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
