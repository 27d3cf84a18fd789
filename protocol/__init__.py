"""ABP/1, defined once: message schemas, events, and sans-I/O connections.

Everything else in the project (server, client, conformance suite) imports
this package and nothing else parses the wire. The top level holds what a
program talking ABP/1 needs: the two connections, the events they hand out
and take, the errors, and the protocol's limits. Below it, in named public
submodules: ``protocol.codec`` (the raw codec and line reader),
``protocol.program`` (what every program's command line shares),
``protocol.address``, ``protocol.escape``, ``protocol.requirements`` (the
spec's requirement list) and ``protocol.strategies`` (hypothesis).
"""

from protocol._connection import (
    DEFAULT_QUIET_PERIOD,
    ClientConnection,
    ClientEvent,
    ServerConnection,
    ServerEvent,
)
from protocol._errors import ABPError, LocalProtocolError, RemoteProtocolError
from protocol._events import (
    Add,
    ConnectionClosed,
    CounterReply,
    CounterRequest,
    Error,
    Find,
    InvalidRequest,
    LegacyReply,
    Ok,
    Remove,
    Request,
    Response,
    ServerBusy,
)
from protocol._schema import DEFAULT_HOST, DEFAULT_PORT, MAX_REQUEST_LINE, MAX_RESPONSE_LINE

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_QUIET_PERIOD",
    "MAX_REQUEST_LINE",
    "MAX_RESPONSE_LINE",
    "ABPError",
    "Add",
    "ClientConnection",
    "ClientEvent",
    "ConnectionClosed",
    "CounterReply",
    "CounterRequest",
    "Error",
    "Find",
    "InvalidRequest",
    "LegacyReply",
    "LocalProtocolError",
    "Ok",
    "RemoteProtocolError",
    "Remove",
    "Request",
    "Response",
    "ServerBusy",
    "ServerConnection",
    "ServerEvent",
]
