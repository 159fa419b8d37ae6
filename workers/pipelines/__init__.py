"""The registry: pipeline name -> the module that runs it."""

from workers.pipelines.base import Pipeline
from workers.pipelines.echo import Echo
from workers.pipelines.image_to_image import ImageToImage
from workers.pipelines.image_to_text import ImageToText
from workers.pipelines.image_to_video import ImageToVideo
from workers.pipelines.text_to_image import TextToImage
from workers.pipelines.upscale import Upscale

PIPELINES: dict[str, type[Pipeline]] = {
    cls.name: cls for cls in (TextToImage, ImageToImage, ImageToVideo, Upscale, ImageToText,
                              Echo)
}


def pipeline_class(name: str) -> type[Pipeline]:
    try:
        return PIPELINES[name]
    except KeyError:
        raise LookupError(f"no pipeline named {name!r}") from None
