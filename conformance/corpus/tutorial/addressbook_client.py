"""The address-book client as the tutorial writes it: a menu, a new
connection per command, the request sent with no terminator, one ``recv(250)``."""

import argparse
import socket

MENU = """
1) Add Entry
2) Delete Entry
3) Find Entry
4) Quit
"""


def ask(host: str, port: int, request: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.connect((host, port))
    sock.send(request.encode())
    print(sock.recv(250).decode())
    sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=2007)
    args = parser.parse_args()
    while True:
        print(MENU)
        try:
            choice = int(input("Choose an option[1-4] "))
        except ValueError:
            continue
        except EOFError:
            return
        if choice == 1:
            name = input("Enter the name: ")
            number = input("Enter the house number: ")
            street = input("Enter the street name: ")
            town = input("Enter the town: ")
            phone = input("Enter the phone number: ")
            ask(args.host, args.port, f"add:{name},{number} {street}, {town}, {phone}")
        elif choice == 2:
            ask(args.host, args.port, "rem:" + input("Enter the name: "))
        elif choice == 3:
            ask(args.host, args.port, "fnd:" + input("Enter the name: "))
        elif choice == 4:
            return


if __name__ == "__main__":
    main()
