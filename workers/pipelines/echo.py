"""echo: returns its input as JSON, after optional timed steps. For benchmarks and tests
of everything around a pipeline (dispatch, progress, cancel, crashes): it needs no model."""

import json
import threading

from tasks.messages import Output
from workers.pipelines.base import Pipeline


class Echo(Pipeline):
    name = "echo"

    def load(self, model_path: str) -> None:
        self._never = threading.Event()  # waited on for step_seconds: nothing sets it

    def run(self, params, inputs, on_step):
        steps = params.get("steps", 0)
        for step in range(1, steps + 1):
            self._never.wait(params.get("step_seconds", 0.0))
            on_step(step, steps)
        if params.get("fail") == "error":
            raise RuntimeError("echo asked to fail")
        if params.get("fail") == "oom":
            import torch

            raise torch.OutOfMemoryError("echo asked to run out of memory")
        body = {"prompt": params.get("prompt", ""),
                "inputs": {name: len(data) for name, data in inputs.items()}}
        return [Output.from_bytes(json.dumps(body).encode(), "application/json",
                                  params["seed"])]

    def smoke(self) -> None:
        """Nothing to prove: there is no model."""
