"""image-to-image: Stable Diffusion family img2img (and instruct-pix2pix) through diffusers,
with the request's LoRA adapters and its prompt split on "|" for models that take several."""

import inspect

from tasks.messages import Output
from tasks.pipelines.image_to_image import ImageToImageRequest
from workers.pipelines.base import (
    Pipeline,
    SafetyChecker,
    diffusers_step_callback,
    generators,
    open_image,
    plain_png,
    png_bytes,
    resize_to,
    snap_to_multiple,
    torch_dtype,
)
from workers.pipelines.lora import LoraSlots
from workers.pipelines.prompts import prompt_arguments

# Params that only some image-to-image pipelines take: instruct-pix2pix has no strength,
# only it has an image_guidance_scale.
OPTIONAL_PARAMS = ("strength", "image_guidance_scale")

SMOKE_PARAMS = ImageToImageRequest(prompt="smoke", strength=1.0, guidance_scale=1.0,
                                   image_guidance_scale=1.0, num_inference_steps=1, seed=0)


class ImageToImage(Pipeline):

    def load(self, model_path: str) -> None:
        from diffusers import AutoPipelineForImage2Image, DiffusionPipeline

        dtype = torch_dtype(self.device)
        # AutoPipeline turns any text-to-image checkpoint into its img2img pipeline but knows
        # no instruct-pix2pix one, which is an image-to-image pipeline already.
        if "InstructPix2Pix" in DiffusionPipeline.load_config(model_path)["_class_name"]:
            self.pipe = DiffusionPipeline.from_pretrained(model_path, dtype=dtype)
        else:
            self.pipe = AutoPipelineForImage2Image.from_pretrained(model_path, dtype=dtype)
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.safety = SafetyChecker(self.pipe)
        self.accepts = set(inspect.signature(self.pipe.__call__).parameters)
        self.loras = LoraSlots(self.context)

    def extra_bytes(self) -> int:
        return self.loras.bytes()

    def run(self, params: ImageToImageRequest, inputs, on_step):
        try:  # released even when applying fails half way
            self.loras.apply(self.pipe, params.lora_weights, params.lora_ids)
            return self._transform(params, inputs, on_step)
        finally:
            self.loras.release(self.pipe)

    def _transform(self, params: ImageToImageRequest, inputs, on_step):
        image = open_image(inputs["image"])
        count = params.num_images_per_prompt
        result = self.pipe(
            **prompt_arguments(self.accepts, params.prompt, params.negative_prompt),
            image=snap_to_multiple(image),
            guidance_scale=params.guidance_scale,
            num_inference_steps=params.num_inference_steps,
            num_images_per_prompt=count,
            generator=generators(params.seed, count),
            # No total: the pipeline runs only int(steps * strength) of the steps.
            callback_on_step_end=diffusers_step_callback(on_step),
            **{key: getattr(params, key) for key in OPTIONAL_PARAMS if key in self.accepts},
        )
        flags = self.safety.flags(result.images, params.safety_check)
        # The answer has the input's size even where the model worked on a snapped one.
        return [
            Output.from_bytes(png_bytes(resize_to(out, image.size)), "image/png",
                              params.seed + i, bool(flags[i]))
            for i, out in enumerate(result.images)
        ]

    def smoke(self) -> list[Output]:
        return self.run(SMOKE_PARAMS, {"image": plain_png()}, lambda step, total: None)
