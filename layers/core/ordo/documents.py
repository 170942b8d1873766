"""Document jobs: invoices and contracts, run on the same FIFO lane as the text tasks.

The result is derived from the uploaded content alone, never at random: the same document always
gives the same result. Content that cannot be interpreted fails the job with a readable error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ordo.clock import Sleeper, scaled_sleep
from ordo.errors import PayloadTooLarge

# content + metaData as compact JSON: a job item (input and result) stays far below 400 KB.
MAX_DOCUMENT_BYTES = 64 * 1024
PROGRESS_STEPS = (25, 50, 75)


class DocumentType(StrEnum):
    INVOICE = "invoice"
    CONTRACT = "contract"

    @property
    def delay_seconds(self) -> float:
        return 2.0 if self is DocumentType.INVOICE else 3.0


class InvalidDocument(Exception):
    """The content cannot be interpreted; the message is shown to the user."""


class UploadRequest(BaseModel):
    """``POST /upload`` body. ``metaData`` keeps the seed's camel-case spelling."""

    model_config = ConfigDict(extra="forbid")

    type: DocumentType
    content: dict[str, Any] = Field(description="The document, as a JSON object.")
    meta_data: dict[str, Any] | None = Field(default=None, alias="metaData")

    def canonical(self) -> str:
        """What the job stores and the worker reads: compact, with sorted keys."""
        body = {"content": self.content, "metaData": self.meta_data}
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def check_size(self) -> str:
        text = self.canonical()
        size = len(text.encode())
        if size > MAX_DOCUMENT_BYTES:
            raise PayloadTooLarge(
                f"content and metaData are {size} bytes as JSON; at most {MAX_DOCUMENT_BYTES}"
            )
        return text


def _reference(prefix: str, content: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return f"{prefix}-{digest[:8].upper()}"


def _text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidDocument(f"{field} must be text, not {type(value).__name__}")
    return str(value).strip() or None


def _amount(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidDocument(f"amount must be a number, not {type(value).__name__}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise InvalidDocument(f"amount must be a number, not {value!r}") from exc
    if not number.is_finite():
        raise InvalidDocument(f"amount must be a finite number, not {value!r}")
    return float(round(number, 2))


def _currency(value: Any) -> str:
    if value is None:
        return "USD"
    if not isinstance(value, str) or len(value.strip()) != 3 or not value.strip().isalpha():
        raise InvalidDocument(f"currency must be a three-letter code, not {value!r}")
    return value.strip().upper()


def interpret_invoice(content: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    def field(name: str) -> Any:
        return content.get(name, meta.get(name))

    number = _text(field("invoice_number"), "invoice_number") or _text(
        meta.get("reference", content.get("reference")), "reference"
    )
    return {
        "invoice_number": number or _reference("INV", content),
        "amount": _amount(field("amount")),
        "vendor": _text(field("vendor"), "vendor"),
        "currency": _currency(field("currency")),
        "status": "processed",
    }


def _names(value: Any, field: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InvalidDocument(f"{field} must be a list of names")
    return [v.strip() for v in value]


def _date(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError as exc:
        raise InvalidDocument(f"effective_date must be a date (YYYY-MM-DD), not {value!r}") from exc


def interpret_contract(content: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    number = _text(content.get("contract_number"), "contract_number") or _text(
        meta.get("reference", content.get("reference")), "reference"
    )
    parties = _names(content.get("parties"), "parties") or []
    return {
        "contract_number": number or _reference("CTR", content),
        "parties": parties,
        "effective_date": _date(content.get("effective_date")),
        "status": "signed",
        "signed_by": _names(content.get("signed_by"), "signed_by") or parties,
    }


INTERPRETERS: dict[
    DocumentType, Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]
] = {
    DocumentType.INVOICE: interpret_invoice,
    DocumentType.CONTRACT: interpret_contract,
}


def process_document(
    document_type: DocumentType,
    document: str,
    time_scale: float,
    sleep: Sleeper,
    report: Callable[[int], None],
) -> str:
    """Interpret the stored document, reporting progress on the way; returns the result JSON."""
    body = json.loads(document)
    result = INTERPRETERS[document_type](body["content"], body.get("metaData") or {})
    step = document_type.delay_seconds / (len(PROGRESS_STEPS) + 1)
    for progress in PROGRESS_STEPS:
        scaled_sleep(step, time_scale, sleep)
        report(progress)
    scaled_sleep(step, time_scale, sleep)
    return json.dumps(result, separators=(",", ":"), ensure_ascii=False)
