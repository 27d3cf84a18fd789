"""Deliberately broken ABP/1 servers: the corpus the conformance suite proves itself on.

``base.Server`` is a small, correct server; ``defects.DEFECTS`` names each
broken variant, the requirement(s) the suite must fail it on, and what the
suite needs to see it. Run one with ``python -m conformance.corpus.servers
--defect NAME --port P --data DIR`` (``--list`` shows them all).
"""
