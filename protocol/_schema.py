"""Every ABP/1 wire format, declared once in construct and used both ways.

Nothing else in the project joins or splits wire text. The schemas describe a
single line *without* its terminator; ``Line`` adds the LF when building. The
connection objects split whole lines out of their buffer first and parse only
whole lines (construct's ``StreamError`` would otherwise also mean
"incomplete").

Constraints that are not expressible in construct (a NAME is non-empty and
holds no comma) live next to the schema as character sets, so that the
hypothesis strategies in ``protocol.strategies`` derive from the same facts.
"""

from __future__ import annotations

from typing import Any

from construct import (
    Adapter,
    Computed,
    Const,
    GreedyBytes,
    GreedyString,
    NullTerminated,
    Select,
    Struct,
    Switch,
    Terminated,
    this,
)

#: ABP-TRANSPORT-3: the tutorial's address.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 2007

#: Bytes that end a line (ABP-FRAME-1, ABP-FRAME-3).
LF = b"\n"
CR = b"\r"
#: ABP-FRAME-9: the longest request line a server must accept, terminator excluded.
MAX_REQUEST_LINE = 4096
#: ABP-FRAME-14 asks clients for 8192; ours take far more before giving up.
MAX_RESPONSE_LINE = 1 << 20

#: Characters a NAME can never hold on the wire (ABP-REQ-2, section 3).
NAME_FORBIDDEN = frozenset(",\r\n\x00")
#: Characters an ENTRY can never hold on the wire (section 3).
ENTRY_FORBIDDEN = frozenset("\r\n\x00")

#: The request commands: lowercase, case-sensitive (ABP-REQ-8).
COMMANDS = ("add", "rem", "fnd")

Utf8 = GreedyString("utf8")

# ----------------------------------------------------------------- framing

#: One line on the wire: payload then LF. Used to build; parsing splits first.
Line = NullTerminated(GreedyBytes, term=LF)

# ---------------------------------------------------------------- requests

#: ARGUMENT of ``add``: NAME up to the first ",", ENTRY is the rest (ABP-REQ-2);
#: with no "," at all the whole argument is NAME and the entry is empty
#: (ABP-REQ-3: the end of the line stands in for the comma). Builds always write ",".
AddArgument = Struct(
    "name" / NullTerminated(Utf8, term=b",", require=False),  # text before the first ","
    "entry" / Utf8,  # everything after it, "," and ":" included; "" when no ","
)

#: ARGUMENT of ``rem`` and ``fnd``: the whole rest of the line is the name.
NameArgument = Struct("name" / Utf8)

#: ``COMMAND ":" ARGUMENT``, split at the first ":" only (ABP-REQ-1).
Request = Struct(
    "command" / NullTerminated(Utf8, term=b":"),  # text before the first ":"
    "argument"
    / Switch(
        this.command,
        {"add": AddArgument, "rem": NameArgument, "fnd": NameArgument},
        default=Utf8,  # unknown command: keep the argument as text
    ),
)

# --------------------------------------------------------------- responses


class _SpaceThenText(Adapter):  # type: ignore[misc]
    """``": " TEXT``: one optional space after the colon, which builds as one."""

    def _decode(self, obj: str, context: Any, path: Any) -> str:
        return obj[1:] if obj.startswith(" ") else obj

    def _encode(self, obj: str, context: Any, path: Any) -> str:
        return " " + obj


#: ``ERROR: TEXT``; clients accept any line starting "ERROR:" (ABP-RESP-5).
ErrorResponse = Struct("status" / Const(b"ERROR:"), "text" / _SpaceThenText(Utf8))
#: ``OK: TEXT`` (ABP-RESP-1, ABP-RESP-2); the text may be empty ("OK: ").
OkTextResponse = Struct("status" / Const(b"OK: "), "text" / Utf8)
#: A bare ``OK`` (ABP-RESP-1).
OkResponse = Struct("status" / Const(b"OK"), Terminated, "text" / Computed(None))

#: Any ABP response. The ``status`` Const tags the union for building:
#: ``Response.build({"status": b"OK: ", "text": "x"})``.
Response = Select(ErrorResponse, OkTextResponse, OkResponse)


class _Decimal(Adapter):  # type: ignore[misc]
    """A positive decimal integer written in ASCII digits."""

    def _decode(self, obj: str, context: Any, path: Any) -> int:
        if not obj.isascii() or not obj.isdigit():
            raise ValueError(f"not a decimal number: {obj!r}")
        return int(obj)

    def _encode(self, obj: int, context: Any, path: Any) -> str:
        return str(obj)


#: The counter service's answer, the tutorial's wording (ABP-COUNTER-1).
CounterReply = Struct(
    Const(b"Thankyou!, processed connection number "),
    "number" / _Decimal(GreedyString("ascii")),
)
