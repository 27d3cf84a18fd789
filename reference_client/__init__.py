"""The reference ABP/1 client, ``abp-client``: a thin I/O shell around
``protocol.ClientConnection`` for using and debugging servers.

``Session`` does the talking (one connection per request, every wait
bounded); ``cli`` maps outcomes to exit codes: 0 OK, 1 ERROR answer,
2 usage or invalid input, 3 network or protocol failure, 130 Ctrl-C.
``describe_unterminated`` says in one line what arrived with no LF.
"""

from reference_client.arrival import describe_unterminated
from reference_client.endpoint import Address, AddressError, parse_address, resolve_address
from reference_client.link import Exchange, NetworkError, RawResult, Session
from reference_client.trace import Tracer

__all__ = [
    "Address",
    "AddressError",
    "Exchange",
    "NetworkError",
    "RawResult",
    "Session",
    "Tracer",
    "describe_unterminated",
    "parse_address",
    "resolve_address",
]
