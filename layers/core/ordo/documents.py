"""Document jobs: invoices and contracts, run on the same FIFO lane as the text tasks.

The result is derived from the uploaded content alone, never at random: the same document always
gives the same result. Content that cannot be interpreted fails the job with a readable error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ordo.errors import InvalidInput, PayloadTooLarge
from ordo.jobs import JobQueue, JobStatusView, JobTable, accept, find_job, new_job
from ordo.kinds import JobFailed, Kind, Registry, RunContext
from ordo.security import Viewer
from ordo.validation import check_json

# content + metaData as compact JSON: a job item (input and result) stays far below 400 KB.
MAX_DOCUMENT_BYTES = 64 * 1024
PROGRESS_STEPS = (25, 50, 75)
# An amount is money: at most 15 integer digits, and a non-zero amount is at least a cent.
MAX_AMOUNT = Decimal("999999999999999.99")
CENT = Decimal("0.01")


class DocumentType(StrEnum):
    INVOICE = "invoice"
    CONTRACT = "contract"


class InvalidDocument(JobFailed):
    """The content cannot be interpreted; the message is shown to the user."""


def _canonical(content: dict[str, Any], meta_data: dict[str, Any] | None) -> str:
    """What the size limit measures: compact, with sorted keys."""
    body = {"content": content, "metaData": meta_data}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _check_size(content: dict[str, Any], meta_data: dict[str, Any] | None) -> str:
    text = _canonical(content, meta_data)
    size = len(text.encode())
    if size > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(
            f"content and metaData are {size} bytes as JSON; at most {MAX_DOCUMENT_BYTES}"
        )
    return text


class _Document(BaseModel):
    """``content`` and ``metaData`` (the seed's camel case), as uploaded and as stored."""

    model_config = ConfigDict(extra="forbid")

    content: dict[str, Any] = Field(description="The document, as a JSON object.")
    meta_data: dict[str, Any] | None = Field(default=None, alias="metaData")

    @field_validator("content", "meta_data")
    @classmethod
    def _bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_json(value, "content") if value is not None else None

    def canonical(self) -> str:
        return _canonical(self.content, self.meta_data)

    def check_size(self) -> str:
        """The canonical JSON of content and metaData; ``PayloadTooLarge`` past the limit."""
        return _check_size(self.content, self.meta_data)


class DocumentPayload(_Document):
    """A document job's input: the uploaded ``content`` and ``metaData``."""

    model_config = ConfigDict(frozen=True)

    DELAY_SECONDS: ClassVar[float]

    kind: str


class InvoicePayload(DocumentPayload):
    DELAY_SECONDS = 2.0
    kind: Literal["invoice"] = "invoice"


class ContractPayload(DocumentPayload):
    DELAY_SECONDS = 3.0
    kind: Literal["contract"] = "contract"


PAYLOADS: dict[DocumentType, type[DocumentPayload]] = {
    DocumentType.INVOICE: InvoicePayload,
    DocumentType.CONTRACT: ContractPayload,
}


class UploadRequest(_Document):
    """``POST /upload`` body. ``metaData`` keeps the seed's camel-case spelling."""

    type: DocumentType

    def payload(self) -> DocumentPayload:
        body = {"content": self.content, "metaData": self.meta_data}
        return PAYLOADS[self.type].model_validate(body)


# --- interpretation ----------------------------------------------------------------------


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
    if abs(number) > MAX_AMOUNT:
        raise InvalidDocument(f"amount must be within ±{MAX_AMOUNT:,}, not {value!r}")
    cents = number.quantize(CENT)
    if number and not cents:
        raise InvalidDocument(f"amount must be zero or at least a cent, not {value!r}")
    return float(cents)


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


INTERPRETERS: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]] = {
    DocumentType.INVOICE: interpret_invoice,
    DocumentType.CONTRACT: interpret_contract,
}


def run_document(payload: DocumentPayload, ctx: RunContext) -> str:
    """Interpret the document, reporting progress on the way; returns the result as JSON."""
    result = INTERPRETERS[payload.kind](payload.content, payload.meta_data or {})
    step = payload.DELAY_SECONDS / (len(PROGRESS_STEPS) + 1)
    for progress in PROGRESS_STEPS:
        ctx.sleep(step)
        ctx.report(progress)
    ctx.sleep(step)
    return json.dumps(result, separators=(",", ":"), ensure_ascii=False)


def _admit(payload: DocumentPayload) -> None:
    payload.check_size()


def _document_kind(document: DocumentType, max_seconds: float, extracts: str) -> Kind[Any]:
    payload = PAYLOADS[document]
    return Kind(
        name=document.value,
        payload=payload,
        run=run_document,
        max_seconds=max_seconds,
        result_is_json=True,
        admit=_admit,
        description=f"Extract {extracts} ({payload.DELAY_SECONDS:g} s).",
    )


# The maximum is the simulated processing time plus room for the progress writes.
INVOICE = _document_kind(
    DocumentType.INVOICE, 5, "an invoice's number, amount, vendor and currency"
)
CONTRACT = _document_kind(
    DocumentType.CONTRACT, 6, "a contract's number, parties, date and signatories"
)


# --- the /upload and /process API --------------------------------------------------------


class DocumentAccepted(BaseModel):
    job_id: str
    message: Literal["Document received. Processing started."] = (
        "Document received. Processing started."
    )
    timestamp: datetime


class ProcessRequest(BaseModel):
    """``POST /process`` body: which job, and the document type the caller expects it to be."""

    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(max_length=100)
    document: DocumentType


def submit_document(
    table: JobTable,
    queue: JobQueue,
    request: UploadRequest,
    *,
    owner: str,
    now: datetime,
    retention_days: int,
    max_pending: int,
) -> DocumentAccepted:
    """Accept an invoice or a contract onto the lane; ``PayloadTooLarge`` past the limit."""
    request.check_size()
    job = new_job(request.payload(), owner=owner, now=now)
    accept(table, queue, job, now, max_pending=max_pending, retention_days=retention_days)
    return DocumentAccepted(job_id=job.job_id, timestamp=now)


def check_document(
    table: JobTable, viewer: Viewer, request: ProcessRequest, kinds: Registry
) -> JobStatusView:
    """``/status`` for a document job, after checking it is the type the caller expects."""
    job = find_job(table, viewer, request.job_id)
    if job.kind != request.document:
        raise InvalidInput(f"job {job.job_id} is a {job.kind}, not a {request.document}")
    return JobStatusView.of(job, kinds)
