"""The tutorial's counter client: five connections, one request and one
``recv(100)`` each, printed, then a pause."""

import argparse
import socket
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=2007)
    parser.add_argument("--times", type=int, default=5)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between connections")
    args = parser.parse_args()
    for i in range(args.times):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.connect((args.host, args.port))
        sock.send(b"dummy request\n")
        print(sock.recv(100).decode())
        sock.close()
        if i < args.times - 1:
            time.sleep(args.pause)  # the tutorial's pacing, not synchronisation


if __name__ == "__main__":
    main()
