"""moto's SSM without moto's EC2 (infra.local.moto_imports): the local cloud stores its token
keys in SSM without paying for EC2, and EC2 is still there for whatever uses it. Each case is a
fresh interpreter, as the local cloud's process is."""

from __future__ import annotations

from infra.local.stack import ROOT
from tests.probe import run_probe

PROBE = """\
import json, sys
from infra.local.moto_imports import import_ssm_without_ec2
import_ssm_without_ec2()
state = {"ssm": "moto.ssm.models" in sys.modules, "ec2_after_ssm": "moto.ec2" in sys.modules}
from moto.ssm.models import ssm_backends
ssm = ssm_backends["123456789012"]["us-east-1"]
ssm.put_parameter(
    name="/probe", description="", value="value", parameter_type="String", allowed_pattern="",
    keyid="", overwrite=False, tags=[], data_type="text", tier=None, policies=None,
)
state["parameter"] = ssm.get_parameter("/probe").value
state["ec2_after_parameter"] = "moto.ec2" in sys.modules
# SendCommand with Targets looks the instances up in EC2: the real module, imported now.
from moto.ssm import models
ec2 = models.ec2_backends["123456789012"]["us-east-1"]
state["ec2_backend"] = type(ec2).__name__
state["ec2_is_the_real_module"] = hasattr(sys.modules["moto.ec2"], "__path__")
import moto.ec2
state["ec2_imports"] = moto.ec2.ec2_backends["123456789012"]["us-east-1"] is ec2
print(json.dumps(state))
"""


def test_ssm_works_without_ec2_and_ec2_is_imported_on_first_use() -> None:
    assert run_probe(PROBE, cwd=ROOT, timeout=120) == {
        "ssm": True,
        "ec2_after_ssm": False,
        "parameter": "value",
        "ec2_after_parameter": False,
        "ec2_backend": "EC2Backend",
        "ec2_is_the_real_module": True,
        "ec2_imports": True,
    }
