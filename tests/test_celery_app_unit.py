"""The Celery app's pieces that need no broker: bound methods as tasks."""

from celery import Celery

from tasks.celery_app import method_task


class Ledger:
    def settle(self, job_id: str, worker: str) -> str:
        return f"{job_id} by {worker}"


def test_a_bound_method_task_can_be_sent_from_its_own_object_as_retries_are():
    celery = Celery("unit", broker="memory://")
    task = method_task(celery, Ledger().settle, name="unit.settle")
    task.apply_async(args=["job-1", "w"], queue="unit")  # a retry's own send: no TypeError
    assert task("job-1", "w") == "job-1 by w"
