"""The reference ABP/1 client, ``abp-client``: a thin I/O shell around
``protocol.ClientConnection`` for using and debugging servers.

``Session`` does the talking (one connection per request, every wait
bounded); ``cli`` maps outcomes to exit codes: 0 OK, 1 ERROR answer,
2 network or protocol failure, 64 usage or invalid input.
"""

from reference_client.address import Address, AddressError, parse_address, resolve_address
from reference_client.session import NetworkError, RawResult, Session
from reference_client.trace import Tracer

__all__ = [
    "Address",
    "AddressError",
    "NetworkError",
    "RawResult",
    "Session",
    "Tracer",
    "parse_address",
    "resolve_address",
]
