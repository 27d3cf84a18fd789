"""The ABP/1 reference server: asyncio I/O around ``protocol.ServerConnection``,
with an embedded SQLite book (one writer thread, group commit).

Run it as ``abp-server`` or ``python -m reference_server`` (``--help``).
"""

from reference_server.connection import STORE_FAILED
from reference_server.server import ListenError, Server, Settings, serve
from reference_server.store import Store, StoreError

__all__ = ["STORE_FAILED", "ListenError", "Server", "Settings", "Store", "StoreError", "serve"]
