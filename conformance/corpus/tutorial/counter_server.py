"""A connection-counting server as the tutorial writes it: one client at a time,
``listen(5)``, and every ``recv(100)`` answered with no terminator."""

import argparse
import socket


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=2007)
    args = parser.parse_args()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((args.host, args.port))
    server.listen(5)
    count = 0
    while True:
        conn, (_, port) = server.accept()
        count += 1
        print(f"Connection {count} using port {port}", flush=True)
        with conn:
            while True:
                try:
                    data = conn.recv(100)
                except OSError:
                    break
                if not data:
                    break
                conn.send(f"Thankyou!, processed connection number {count}".encode())


if __name__ == "__main__":
    main()
