"""Logging and metrics: Powertools' structured Logger and EMF Metrics, shared by every function.

Service name and log level come from Powertools' own variables (``POWERTOOLS_SERVICE_NAME``,
``POWERTOOLS_LOG_LEVEL``), which the template sets.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="ordo")
metrics = Metrics(namespace="ordo", service="ordo")

__all__ = ["MetricUnit", "logger", "metrics"]
