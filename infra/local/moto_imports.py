"""moto's SSM without moto's EC2, until something uses EC2.

``moto.ssm`` imports ``moto.ec2`` for one feature: ``SendCommand`` with ``Targets`` looks the
instances up in EC2. Importing ``moto.ec2`` parses EC2's instance-type catalogue and its service
model (three times): about 110 MB and 0.85 s in the local cloud's process, which stores the token
keys in SSM. :func:`import_ssm_without_ec2` imports ``moto.ssm`` against a stand-in for
``moto.ec2`` whose ``ec2_backends`` imports the real module on first use. The stand-in is gone
from ``sys.modules`` before it returns, so ``import moto.ec2`` anywhere (an EC2 request to the
local cloud's moto, say) still gets the real module.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

EC2 = "moto.ec2"
SSM = "moto.ssm.models"


class DeferredEc2Backends:
    """``moto.ec2.ec2_backends``, imported on first use (``ec2_backends[account][region]``)."""

    def __getitem__(self, account_id: str) -> Any:
        return importlib.import_module(EC2).ec2_backends[account_id]


def import_ssm_without_ec2() -> None:
    """Import ``moto.ssm`` (if it is not yet) without importing ``moto.ec2``."""
    if SSM in sys.modules or EC2 in sys.modules:
        return
    stand_in = types.ModuleType(EC2)
    stand_in.ec2_backends = DeferredEc2Backends()  # type: ignore[attr-defined]
    sys.modules[EC2] = stand_in
    try:
        importlib.import_module(SSM)
    except ImportError:  # a moto whose SSM needs more of EC2 at import: pay for it
        sys.modules.pop(EC2, None)
        importlib.import_module(SSM)
    finally:
        if sys.modules.get(EC2) is stand_in:
            del sys.modules[EC2]
