"""upscale: Stable Diffusion x4 upscaler through diffusers."""

from tasks.messages import Output
from tasks.pipelines.upscale import UpscaleRequest
from workers.pipelines.base import (
    Pipeline,
    generators,
    open_image,
    plain_png,
    png_bytes,
    resize_to,
    snap_to_multiple,
    torch_dtype,
)

NOISE_LEVEL = 20  # diffusers' default: how much noise the low-res image gets before denoising


class Upscale(Pipeline):

    def load(self, model_path: str) -> None:
        from diffusers import StableDiffusionUpscalePipeline

        self.pipe = StableDiffusionUpscalePipeline.from_pretrained(
            model_path, dtype=torch_dtype(self.device)
        ).to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        # The pipeline denoises latents at the input's size; its VAE decodes them this much larger.
        self.scale = self.pipe.vae_scale_factor

    def run(self, params: UpscaleRequest, inputs, on_step):
        image = open_image(inputs["image"])
        steps = params.num_inference_steps
        result = self.pipe(
            prompt=params.prompt,
            image=snap_to_multiple(image),
            num_inference_steps=steps,
            noise_level=NOISE_LEVEL,
            generator=generators(params.seed, 1),
            # This pipeline has only the older per-step callback (step index, timestep, latents).
            callback=lambda step, timestep, latents: on_step(step + 1, steps),
        )
        flags = getattr(result, "nsfw_content_detected", None) or [False]
        # Exactly scale x the input, even where the model worked on a snapped one.
        size = (image.width * self.scale, image.height * self.scale)
        upscaled = resize_to(result.images[0], size)
        return [Output.from_bytes(png_bytes(upscaled), "image/png", params.seed, bool(flags[0]))]

    def smoke(self) -> list[Output]:
        return self.run(UpscaleRequest(prompt="smoke", num_inference_steps=1, seed=0),
                 {"image": plain_png(32, 32)}, lambda step, total: None)
