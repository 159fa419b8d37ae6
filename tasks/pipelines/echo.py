"""echo: for benchmarks and tests, a pipeline with no model that answers its input after
`steps` steps of `step_seconds` each (or fails as asked)."""

from typing import ClassVar, Literal

from pydantic import Field

from tasks.pipelines.base import PipelineRequest, PipelineSpec


class EchoRequest(PipelineRequest):
    SUMMARY: ClassVar[str] = "Echo the input (benchmarks and tests)."

    prompt: str = ""
    steps: int = Field(0, ge=0, le=10_000)
    step_seconds: float = Field(0.0, ge=0, le=60)
    fail: Literal["", "error", "oom"] = ""

    def billable_units(self, uploads: dict) -> int:
        return 1


SPEC = PipelineSpec("echo", EchoRequest, runner="workers.pipelines.echo:Echo")
