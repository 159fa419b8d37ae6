"""text-to-image: Stable Diffusion family pipelines through diffusers' AutoPipeline, with
the request's LoRA adapters and its prompt split on "|" for models that take several."""

import inspect

from tasks.messages import Output
from tasks.pipelines.text_to_image import TextToImageRequest
from workers.pipelines.base import (
    Pipeline,
    SafetyChecker,
    diffusers_step_callback,
    generators,
    png_bytes,
    torch_dtype,
)
from workers.pipelines.lora import LoraSlots
from workers.pipelines.prompts import prompt_arguments


class TextToImage(Pipeline):

    def load(self, model_path: str) -> None:
        from diffusers import AutoPipelineForText2Image

        self.pipe = AutoPipelineForText2Image.from_pretrained(
            model_path, dtype=torch_dtype(self.device)
        ).to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.safety = SafetyChecker(self.pipe)
        self.loras = LoraSlots(self.context)
        self.accepts = set(inspect.signature(self.pipe.__call__).parameters)

    def extra_bytes(self) -> int:
        return self.loras.bytes()

    def run(self, params: TextToImageRequest, inputs, on_step):
        try:  # released even when applying fails half way
            self.loras.apply(self.pipe, params.lora_weights, params.lora_ids)
            return self._generate(params, on_step)
        finally:
            self.loras.release(self.pipe)

    def _generate(self, params: TextToImageRequest, on_step):
        steps = params.num_inference_steps
        count = params.num_images_per_prompt
        result = self.pipe(
            **prompt_arguments(self.accepts, params.prompt, params.negative_prompt),
            width=params.width,
            height=params.height,
            guidance_scale=params.guidance_scale,
            num_inference_steps=steps,
            num_images_per_prompt=count,
            generator=generators(params.seed, count),
            callback_on_step_end=diffusers_step_callback(on_step, steps),
        )
        flags = self.safety.flags(result.images, params.safety_check)
        return [
            Output.from_bytes(png_bytes(image), "image/png", params.seed + i, bool(flags[i]))
            for i, image in enumerate(result.images)
        ]

    def smoke(self) -> list[Output]:
        return self.run(TextToImageRequest(prompt="smoke", width=64, height=64, seed=0,
                                           num_inference_steps=1, guidance_scale=1.0),
                        {}, lambda step, total: None)
