"""moto, as the tests and the local cloud run it (``infra.local.moto_fidelity``), keeps the
isolation DynamoDB guarantees to racing transactions."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from ordo.errors import OrdoError
from ordo.jobs import Job, PendingQuotaExceeded, new_job_id
from ordo.storage.dynamodb import DynamoJobTable
from ordo.tasks import TaskType
from tests.harness import Cloud

OWNER = "b" * 32


def test_racing_submissions_never_pass_the_quota(anonymous_cloud: Cloud) -> None:
    table = DynamoJobTable(
        anonymous_cloud.dynamodb, anonymous_cloud.stack.physical["JobsTable"]["Ref"]
    )
    threads = 20
    barrier = threading.Barrier(threads)

    def submit(_: int) -> str:
        job = Job(
            job_id=new_job_id(),
            owner=OWNER,
            task_type=TaskType.REVERSE,
            data="abc",
            created_at=datetime.now(UTC),
        )
        barrier.wait(timeout=30)
        try:
            table.create(job, 5)
        except PendingQuotaExceeded:
            return "refused"
        except OrdoError as exc:
            return f"error: {exc.detail}"
        return "accepted"

    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(submit, range(threads)))

    assert sorted(outcomes) == ["accepted"] * 5 + ["refused"] * 15
    assert table.pending_count(OWNER) == 5
