"""image-to-video: Stable Video Diffusion through diffusers, answered as an H.264 mp4."""

from tasks.messages import Output
from tasks.pipelines.image_to_video import ImageToVideoRequest
from workers.pipelines.base import (
    Pipeline,
    diffusers_step_callback,
    generators,
    open_image,
    plain_png,
    torch_dtype,
)
from workers.video import encode_mp4

# Frames the VAE decodes at once. Fixed, not fitted to the GPU's memory: the temporal decoder
# mixes the frames of a chunk, so the chunk size is part of what a seed reproduces.
DECODE_CHUNK_SIZE = 8


class ImageToVideo(Pipeline):

    def load(self, model_path: str) -> None:
        from diffusers import StableVideoDiffusionPipeline

        self.pipe = StableVideoDiffusionPipeline.from_pretrained(
            model_path, dtype=torch_dtype(self.device)
        ).to(self.device)
        self.pipe.set_progress_bar_config(disable=True)

    def run(self, params: ImageToVideoRequest, inputs, on_step):
        steps = params.num_inference_steps
        frames = self.pipe(
            image=open_image(inputs["image"]),  # the pipeline resizes it to width x height
            width=params.width,
            height=params.height,
            num_frames=params.num_frames,  # the catalog entry's; None: the model's own
            num_inference_steps=steps,
            fps=params.fps,  # micro-conditioning: the motion the model aims for at this rate
            motion_bucket_id=params.motion_bucket_id,
            noise_aug_strength=params.noise_aug_strength,
            decode_chunk_size=DECODE_CHUNK_SIZE,
            generator=generators(params.seed, 1),
            callback_on_step_end=diffusers_step_callback(on_step, steps),
        ).frames[0]
        # Safety checking video is not done here (SVD has no checker): nsfw stays False.
        return [Output.from_bytes(encode_mp4(frames, params.fps), "video/mp4", params.seed)]

    def smoke(self) -> list[Output]:
        return self.run(ImageToVideoRequest(width=64, height=64, num_inference_steps=1, num_frames=2,
                                     seed=0), {"image": plain_png()}, lambda step, total: None)
