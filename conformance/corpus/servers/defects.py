"""Every corpus server, by name: ``DEFECTS[name]`` is a ``Defect``.

``correct`` and ``correct-counter`` are the controls (no defect: the suite
must pass them); every other entry is the correct server with one defect,
and the requirement(s) the conformance suite must fail it on. Listed in the
order of docs/spec.md.
"""

from __future__ import annotations

from conformance.corpus.servers import (  # noqa: F401 - importing registers them
    connection_defects,
    framing_defects,
    request_defects,
)
from conformance.corpus.servers.registry import DEFECTS as _REGISTERED
from conformance.corpus.servers.registry import Defect
from protocol import requirements


def _spec_order(defect: Defect) -> tuple[int, int]:
    order = {rid: n for n, rid in enumerate(requirements.catalogue())}
    first = min((order.get(rid, len(order)) for rid in defect.requirements), default=-1)
    return (defect.service != "abp" and bool(defect.requirements), first)


DEFECTS: dict[str, Defect] = {d.name: d for d in sorted(_REGISTERED.values(), key=_spec_order)}

__all__ = ["DEFECTS", "Defect"]
