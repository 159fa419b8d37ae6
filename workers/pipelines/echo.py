"""echo: returns its input as JSON, after optional timed steps. For benchmarks and tests
of everything around a pipeline (dispatch, progress, cancel, crashes): it needs no model."""

import json
import threading

from tasks.messages import Output
from tasks.pipelines.echo import EchoRequest
from workers.pipelines.base import Pipeline


class Echo(Pipeline):

    def load(self, model_path: str) -> None:
        self._never = threading.Event()  # waited on for step_seconds: nothing sets it

    def run(self, params: EchoRequest, inputs, on_step):
        for step in range(1, params.steps + 1):
            self._never.wait(params.step_seconds)
            on_step(step, params.steps)
        if params.fail == "error":
            raise RuntimeError("echo asked to fail")
        if params.fail == "oom":
            import torch

            raise torch.OutOfMemoryError("echo asked to run out of memory")
        body = {"prompt": params.prompt,
                "inputs": {name: len(data) for name, data in inputs.items()}}
        return [Output.from_bytes(json.dumps(body).encode(), "application/json", params.seed)]

    def smoke(self) -> list[Output]:
        """Nothing to prove: there is no model."""
        return []
