"""The registry: pipeline name -> the module that runs it."""

from workers.pipelines.base import Pipeline
from workers.pipelines.text_to_image import TextToImage

PIPELINES: dict[str, type[Pipeline]] = {
    cls.name: cls for cls in (TextToImage,)
}


def pipeline_class(name: str) -> type[Pipeline]:
    try:
        return PIPELINES[name]
    except KeyError:
        raise LookupError(f"no pipeline named {name!r}") from None
