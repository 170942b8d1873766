"""Preloaded (``ORDO_LOCAL_PRELOAD=tests.e2e.invoke_probe``) into a function that ``ordo local
invoke`` runs: writes the function process's id to the file ``ORDO_PROBE_PID_FILE`` names, so
a test can check that the process is gone afterwards."""

import os
from pathlib import Path

Path(os.environ["ORDO_PROBE_PID_FILE"]).write_text(str(os.getpid()))
