"""Hostile clients against a server on 127.0.0.1, and what a bystander sees.

    python benchmarks/hostile.py slowloris --port PORT [--connections 5000] [--interval 3]
    python benchmarks/hostile.py hogs --port PORT [--clients 50]
    python benchmarks/hostile.py churn --port PORT [--connections 200]

``slowloris``: N connections, each sending one byte every INTERVAL seconds
and never a whole line (with ``--interval 60``, a connection flood that
holds its sockets). ``churn``: N connections that close (FIN), reset (RST) or
send a request and reset, in turn, at once. ``hogs``: N clients pipelining ``fnd`` requests as fast
as they can and never reading an answer. Meanwhile a bystander, connected
before the attack, asks ``fnd`` in lock step; the script prints its latency
(p50, p99, max; a request unanswered within 5 s counts as 5 s) and what the
attack got (connections open, refused busy, closed by the server). Loopback
only; every loop stops by itself after ``--duration`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import socket
import statistics
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

HOST = "127.0.0.1"
ANSWER_TIMEOUT = 5.0


@dataclass
class Tally:
    opened: int = 0
    failed: int = 0  # connect refused or timed out
    refused: int = 0  # ERROR: Server busy
    closed: int = 0  # closed by the server while attacking
    latencies: list[float] = field(default_factory=list)


async def slow_client(port: int, interval: float, stop: asyncio.Event, tally: Tally) -> None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
    except (OSError, asyncio.TimeoutError):
        tally.failed += 1
        return
    tally.opened += 1
    first = True
    try:
        while not stop.is_set():
            writer.write(b"a")
            await writer.drain()
            with contextlib.suppress(asyncio.TimeoutError):
                data = await asyncio.wait_for(reader.read(4096), interval)
                if first and data.startswith(b"ERROR: Server busy"):
                    tally.refused += 1
                    return
                if not data:
                    tally.closed += 1
                    return
            first = False
    except OSError:
        tally.closed += 1
    finally:
        writer.close()


async def churn(port: int, count: int, stop: asyncio.Event, tally: Tally) -> None:
    """Connect and vanish at once: FIN, RST, or a request then RST, in turn."""
    linger = b"\x01\x00\x00\x00" * 2  # SO_LINGER on, 0 s: close sends RST
    for i in range(count):
        if stop.is_set():
            return
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
        except (OSError, asyncio.TimeoutError):
            tally.failed += 1
            continue
        tally.opened += 1
        if i % 3 == 1:
            writer.write(b"fnd:x\n")
        if i % 3:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            writer.transport.abort()
        else:
            writer.close()
        await asyncio.sleep(0)


async def hog(port: int, stop: asyncio.Event, tally: Tally) -> None:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
    except (OSError, asyncio.TimeoutError):
        tally.failed += 1
        return
    tally.opened += 1
    chunk = b"fnd:hog\n" * 4096
    try:
        while not stop.is_set():
            writer.write(chunk)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(writer.drain(), 0.5)
    except OSError:
        tally.closed += 1
    finally:
        writer.transport.abort()


def bystander(port: int, count: int, seconds: float, out: Connection) -> None:
    """In a process of its own (the attack's event loop must not slow it):
    ``count`` lock-step ``fnd`` requests, 10 ms apart, for at most ``seconds``."""
    latencies: list[float] = []
    with socket.create_connection((HOST, port), timeout=ANSWER_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        out.send("ready")
        out.recv()  # the attack is on
        stop_at = time.monotonic() + seconds
        for i in range(count):
            if time.monotonic() > stop_at:
                break
            started = time.perf_counter()
            sock.sendall(f"fnd:bystander{i}\n".encode())
            data = b""
            try:
                while not data.endswith(b"\n"):
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                data = b""
            ok = data.startswith(b"ERROR: No entry")
            latencies.append(time.perf_counter() - started if ok else ANSWER_TIMEOUT)
            if not ok:
                break
            time.sleep(0.01)
    out.send(latencies)


async def attack(args: argparse.Namespace) -> Tally:
    stop = asyncio.Event()
    tally = Tally()
    here, there = multiprocessing.Pipe()
    watcher = multiprocessing.Process(
        target=bystander, args=(args.port, args.requests, args.duration, there)
    )
    watcher.start()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, here.recv)  # connected before the attack
    if args.attack == "slowloris":
        tasks = []
        for _ in range(args.connections):
            tasks.append(asyncio.create_task(slow_client(args.port, args.interval, stop, tally)))
            await asyncio.sleep(0)
    elif args.attack == "churn":
        tasks = [asyncio.create_task(churn(args.port, args.connections, stop, tally))]
    else:
        tasks = [asyncio.create_task(hog(args.port, stop, tally)) for _ in range(args.clients)]
    await asyncio.sleep(args.ramp)
    here.send("go")
    attack_ends = loop.time() + args.duration
    if await loop.run_in_executor(None, here.poll, args.duration + 2 * ANSWER_TIMEOUT):
        tally.latencies = here.recv()
    await asyncio.sleep(max(0.0, attack_ends - loop.time()))  # the attack lasts --duration
    stop.set()
    await asyncio.wait(tasks, timeout=10)
    for task in tasks:
        task.cancel()
    watcher.join(ANSWER_TIMEOUT)
    if watcher.is_alive():
        watcher.kill()
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("attack", choices=("slowloris", "hogs", "churn"))
    parser.add_argument("--port", type=int, required=True, help="server on 127.0.0.1:PORT")
    parser.add_argument(
        "--connections", type=int, default=5000, help="slowloris or churn connections"
    )
    parser.add_argument("--interval", type=float, default=3.0, help="slowloris: seconds a byte")
    parser.add_argument("--clients", type=int, default=50, help="hogs: pipelining clients")
    parser.add_argument("--requests", type=int, default=500, help="bystander fnd requests")
    parser.add_argument("--ramp", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument(
        "--duration", type=float, default=15.0, help="seconds of attack after the ramp"
    )
    args = parser.parse_args()
    tally = asyncio.run(attack(args))
    lat = sorted(tally.latencies)
    if not lat:
        print("bystander: no answer")
        return 1
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(
        f"{args.attack}: opened {tally.opened}, connect failed {tally.failed}, "
        f"refused busy {tally.refused}, closed by server {tally.closed}"
    )
    print(
        f"bystander: {len(lat)} fnd, p50 {statistics.median(lat) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
