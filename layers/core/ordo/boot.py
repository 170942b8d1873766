"""The cold start of an API function: imported first by its handler module, before FastAPI.

- Pydantic models are built on first use, not where they are defined: every model defined from
  here to the first request (:func:`settle`) has ``defer_build``, and keeps it. Most serve no
  first request: FastAPI's OpenAPI models (some forty) serve only ``/openapi.json``, which API
  Gateway does not route, and of the 20-45 of ordo's that a function imports, most serve other
  routes. FastAPI's TypeAdapters of route parameters over such models are deferred with them.
- Pydantic's plugins are off (``PYDANTIC_DISABLE_PLUGINS``, unless set).
- In Lambda (``AWS_LAMBDA_FUNCTION_NAME`` is the runtime's own variable), the garbage collector
  is off while the handler module is imported. At the first request, :func:`settle` freezes
  what the cold start built and turns collection back on: no collection walks those objects
  again, during an import, a request, or at exit.
"""

from __future__ import annotations

import gc
import os
import warnings

_collecting_after_first_request = "AWS_LAMBDA_FUNCTION_NAME" in os.environ and gc.isenabled()
if _collecting_after_first_request:
    gc.disable()

# ordo uses no pydantic plugin. Without this, the first model build looks for them in the entry
# points of every installed distribution: ~2 ms here, more in Lambda (/var/runtime has more).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from pydantic import BaseModel  # noqa: E402  (after the collector is off)
from pydantic.warnings import UnsupportedFieldAttributeWarning  # noqa: E402

_had_defer_build = "defer_build" in BaseModel.model_config
_defer_build_before = BaseModel.model_config.get("defer_build", False)
BaseModel.model_config["defer_build"] = True  # inherited by every model defined from now on
# FastAPI builds a parameter's TypeAdapter ignoring this warning (the FieldInfo's alias is its
# own); one over a deferred model is built at its first use instead, where it would be logged.
warnings.filterwarnings("ignore", category=UnsupportedFieldAttributeWarning)
_settled = False


def settle() -> None:
    """At the first request: models defined from now on are built as they are defined again;
    in Lambda, freeze the objects of the cold start and turn collection back on, so no
    collection walks them again.

    No collection runs first: in a cold StatusFunction (the .aws-sam/host layer, a busy 2-core
    x86_64) ``gc.collect()`` there reclaimed 343 objects (~116 KB) of ~56,000 in 21-35 ms, more
    than importing with the collector off saves. Those few KB stay frozen for the container's
    life instead.
    """
    global _settled  # noqa: PLW0603
    if _settled:
        return
    _settled = True
    if _had_defer_build:
        BaseModel.model_config["defer_build"] = _defer_build_before
    else:
        BaseModel.model_config.pop("defer_build", None)
    if _collecting_after_first_request:
        gc.freeze()
        gc.enable()
