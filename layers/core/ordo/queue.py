"""The SQS FIFO adapter for :class:`ordo.jobs.JobQueue`, and the message every job sends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

    from ordo.jobs import Job

# One message group: the whole lane is one ordered sequence.
LANE_GROUP = "jobs"


class JobMessage(BaseModel):
    """The SQS message body: a pointer to the job record, never the job's data.

    With the job's owner and kind, the worker claims a job it is given the first time without
    reading it first, and reads it meanwhile (``ordo.worker``); a message without them (sent by
    an older version) has its job read, then claimed.
    """

    model_config = ConfigDict(extra="ignore")

    job_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    owner: str | None = Field(default=None, min_length=1, max_length=128)
    kind: str | None = Field(default=None, min_length=1, max_length=128)

    @classmethod
    def of(cls, job: Job) -> JobMessage:
        return cls(job_id=job.job_id, owner=job.owner, kind=job.kind)


class SqsJobQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, job: Job) -> int:
        response = self._client.send_message(
            QueueUrl=self._url,
            MessageBody=JobMessage.of(job).model_dump_json(),
            MessageGroupId=LANE_GROUP,
            # Deduplicate by job, never by content: identical submissions are distinct jobs.
            MessageDeduplicationId=job.job_id,
        )
        return int(response["SequenceNumber"])


class SqsQueueGauge:
    """:class:`ordo.jobs.QueueGauge` from ``GetQueueAttributes``."""

    ATTRIBUTES: tuple[QueueAttributeNameType, ...] = (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    )

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def depth(self) -> int:
        attributes = self._client.get_queue_attributes(
            QueueUrl=self._url,
            AttributeNames=list(self.ATTRIBUTES),
        )["Attributes"]
        return sum(int(attributes.get(name, "0")) for name in self.ATTRIBUTES)


class SqsReleaser:
    """Makes in-flight messages of the lane visible again at once, in their order."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def release(self, receipt_handles: Sequence[str]) -> None:
        for start in range(0, len(receipt_handles), 10):  # the batch call's limit
            chunk = receipt_handles[start : start + 10]
            response = self._client.change_message_visibility_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for n, handle in enumerate(chunk)
                ],
            )
            if response.get("Failed"):
                raise RuntimeError(f"could not release {len(response['Failed'])} messages")
