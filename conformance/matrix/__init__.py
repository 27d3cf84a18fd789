"""The interoperability matrix: every client against every server.

``conformance matrix --config interop.toml`` reads servers (launch commands)
and clients (argv or menu templates) from ``config``, runs the interop
``scenarios`` for every pair (``runner``; a recording ``relay`` between each
client and its server keeps the bytes for the transcript), one ``cells.Cell``
a pair, and shows the result as a console matrix, Markdown, JSON or HTML
(``reports``). ``--shard
K/N`` runs a stable 1/N of the pairs; ``conformance report merge`` joins the
shards' JSON (and server runs') into one dashboard (``reports.merge``). The
bundled ``interop.toml`` pits the reference implementations against the
tutorial's.
"""
