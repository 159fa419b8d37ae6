"""The registry of pipelines: name -> spec (tasks/pipelines/base.py), read from the Python
entry point group `genai.pipelines`. Every pipeline comes in this way, the built-in ones
(pyproject.toml) as much as another package's:

    [project.entry-points."genai.pipelines"]
    text-embedding = "genai_embeddings.spec:SPEC"

The gateway's routes, OpenAPI, queues, admission and billing, the workers' runners and
the dev stack's tiny models all come from here."""

from importlib.metadata import entry_points

from tasks.pipelines.base import PipelineSpec

ENTRY_POINT_GROUP = "genai.pipelines"


class PluginError(Exception):
    """A registration that is not a pipeline spec, or a name registered twice."""


def discover() -> dict[str, PipelineSpec]:
    found: dict[str, PipelineSpec] = {}
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        spec = entry.load()
        if not isinstance(spec, PipelineSpec):
            raise PluginError(f"entry point {entry.name} = {entry.value} is not a PipelineSpec")
        if spec.name in found:
            raise PluginError(f"pipeline {spec.name!r} is registered twice ({entry.value})")
        found[spec.name] = spec
    if not found:
        # The project itself registers the built-in ones: it is not installed.
        raise PluginError("no pipeline is registered: install the project "
                          "(pip install --no-deps -e ., which `make deps` does)")
    return found


PIPELINES: dict[str, PipelineSpec] = discover()


def pipeline_spec(name: str) -> PipelineSpec:
    try:
        return PIPELINES[name]
    except KeyError:
        raise LookupError(f"no pipeline named {name!r}") from None
