"""The runners: each pipeline's spec (tasks/pipelines) names the class that runs it."""

from tasks.pipelines import pipeline_spec
from workers.pipelines.base import Pipeline


def pipeline_class(name: str) -> type[Pipeline]:
    return pipeline_spec(name).load_runner()
