"""The cold start of an API function: imported first by its handler module, before FastAPI.

- FastAPI's OpenAPI models (``fastapi.openapi.models``, some forty pydantic models) serve only
  ``/openapi.json``, which API Gateway does not route, yet building them was a fifth of every
  API function's import. They are imported here with pydantic's ``defer_build``, so each is
  built on its first use instead (the local cloud's merged document, tests/test_openapi_export).
- In Lambda (``AWS_LAMBDA_FUNCTION_NAME`` is the runtime's own variable), the garbage collector
  is off while the handler module is imported. At the first request, :func:`settle` freezes
  what the cold start built and turns collection back on: no collection walks those objects
  again, during an import, a request, or at exit.
"""

from __future__ import annotations

import gc
import os

_collecting_after_first_request = "AWS_LAMBDA_FUNCTION_NAME" in os.environ and gc.isenabled()
if _collecting_after_first_request:
    gc.disable()

from pydantic import BaseModel  # noqa: E402  (after the collector is off)

BaseModel.model_config["defer_build"] = True  # for the models FastAPI defines while importing
try:
    import fastapi.openapi.models  # noqa: F401
finally:
    del BaseModel.model_config["defer_build"]


def settle() -> None:
    """At the first request: freeze the objects of the cold start and turn collection back on,
    so no collection walks them again.

    No collection runs first: in a cold StatusFunction (the .aws-sam/host layer, a busy 2-core
    x86_64) ``gc.collect()`` there reclaimed 343 objects (~116 KB) of ~56,000 in 21-35 ms, more
    than importing with the collector off saves. Those few KB stay frozen for the container's
    life instead.
    """
    global _collecting_after_first_request  # noqa: PLW0603
    if _collecting_after_first_request:
        _collecting_after_first_request = False
        gc.freeze()
        gc.enable()
