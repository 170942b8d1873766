"""The SQS FIFO adapter for :class:`ordo.jobs.JobQueue`, and the message every job sends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# One message group: the whole lane is one ordered sequence.
LANE_GROUP = "jobs"


class JobMessage(BaseModel):
    """The SQS message body: a pointer to the job record, never the job's data."""

    model_config = ConfigDict(extra="ignore")

    job_id: str = Field(pattern=r"^[0-9a-f]{32}$")


class SqsJobQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, job_id: str) -> int:
        response = self._client.send_message(
            QueueUrl=self._url,
            MessageBody=JobMessage(job_id=job_id).model_dump_json(),
            MessageGroupId=LANE_GROUP,
            # Deduplicate by job, never by content: identical submissions are distinct jobs.
            MessageDeduplicationId=job_id,
        )
        return int(response["SequenceNumber"])


class SqsDeadLetters:
    """Moves a message that can never succeed to the DLQ at once, so it stops blocking the lane."""

    def __init__(self, client: SQSClient, dlq_url: str) -> None:
        self._client = client
        self._url = dlq_url

    def forward(self, message_id: str, body: str, reason: str) -> None:
        self._client.send_message(
            QueueUrl=self._url,
            MessageBody=body,
            MessageGroupId=LANE_GROUP,
            MessageDeduplicationId=message_id,
            MessageAttributes={"ordo-reason": {"DataType": "String", "StringValue": reason[:1000]}},
        )
