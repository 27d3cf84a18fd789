"""Errors are typed by who is at fault, and name the requirement they break.

A ``LocalProtocolError`` means *this* program tried to do something ABP/1 does
not allow (send a name with a comma, answer a request that was never made).
A ``RemoteProtocolError`` means the peer did; it carries, where there is one,
the error response that a server should send back (h11's "hint").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protocol._events import Error


class ABPError(Exception):
    """Base of every error the protocol package raises."""

    def __init__(self, message: str, requirement: str) -> None:
        super().__init__(message)
        self.message = message
        self.requirement = requirement

    def __str__(self) -> str:
        return f"{self.message} [{self.requirement}]"


class LocalProtocolError(ABPError):
    """We were about to break the protocol; nothing was sent."""


class RemoteProtocolError(ABPError):
    """The peer broke the protocol; ``reply`` is the answer a server sends."""

    def __init__(self, message: str, requirement: str, reply: Error | None = None) -> None:
        super().__init__(message, requirement)
        self.reply = reply
