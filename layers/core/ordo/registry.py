"""The job kinds this deployment runs on its lane.

To add a kind, write one module that defines its payload model, its runner and a
:class:`ordo.kinds.Kind`, then register it here with one line. The worker, ``POST /jobs``,
``/status`` and the time budgets in ``template.yaml`` (checked by ``tests/test_template.py``)
all follow from this registry.
"""

from __future__ import annotations

from ordo import aggregation, documents, tasks
from ordo.kinds import Registry

KINDS = Registry()
KINDS.register(tasks.REVERSE)
KINDS.register(tasks.SWAP_PAIRS)
KINDS.register(tasks.REPEAT_BY_POSITION)
KINDS.register(documents.INVOICE)
KINDS.register(documents.CONTRACT)
KINDS.register(aggregation.FETCH)
