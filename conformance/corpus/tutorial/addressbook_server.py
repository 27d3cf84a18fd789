"""The address-book server as the tutorial writes it.

One client at a time; one ``recv(1024)`` per request; ``cmd, data =
s.split(':')`` (two colons or none: ValueError, and the connection is dropped
without a word); answers are human strings with no terminator; the book is
saved to a file after every add and rem.
"""

import argparse
import json
import os
import socket


class AddressBook:
    """The tutorial's helper module: a dict saved to a file, human answers."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.book: dict[str, str] = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                self.book = json.load(f)

    def save(self) -> None:
        with open(self.path, "w", encoding="utf-8") as f:
            json.dump(self.book, f)

    def add(self, name: str, entry: str) -> str:
        self.book[name] = entry
        self.save()
        return f"Entry for {name} added"

    def remove(self, name: str) -> str:
        if name not in self.book:
            return f"No entry found for {name}"
        del self.book[name]
        self.save()
        return f"Entry for {name} removed"

    def find(self, name: str) -> str:
        return self.book.get(name, f"No entry found for {name}")


def serve(conn: socket.socket, book: AddressBook) -> None:
    while True:
        data = conn.recv(1024)
        if not data:
            return
        s = data.decode()
        cmd, data_ = s.split(":")  # ValueError on 0 or 2+ colons: caller drops the link
        if cmd == "add":
            details = data_.split(",")
            answer = book.add(details[0], ",".join(details[1:]))
        elif cmd == "rem":
            answer = book.remove(data_)
        elif cmd == "fnd":
            answer = book.find(data_)
        else:
            answer = "ERROR: Unrecognised command: " + cmd
        conn.send(answer.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=2007)
    parser.add_argument("--book", default="addressbook.json")
    args = parser.parse_args()
    book = AddressBook(args.book)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((args.host, args.port))
    server.listen(5)
    while True:
        conn, _ = server.accept()
        try:
            serve(conn, book)
        except (ValueError, UnicodeDecodeError, OSError):
            pass  # the tutorial's server just drops the connection
        finally:
            conn.close()


if __name__ == "__main__":
    main()
