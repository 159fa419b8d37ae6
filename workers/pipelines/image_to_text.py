"""image-to-text: BLIP-family captioning through transformers (Livepeer's default is
Salesforce/blip-image-captioning-large). A prompt, when given, begins the caption."""

from tasks.messages import Output
from tasks.pipelines.image_to_text import ImageToTextRequest
from workers.pipelines.base import Pipeline, open_image, plain_png, torch_dtype

# The longest caption, in tokens; each token generated is a step of the job's progress.
MAX_NEW_TOKENS = 40


class ImageToText(Pipeline):

    def load(self, model_path: str) -> None:
        from transformers import BlipForConditionalGeneration, BlipProcessor

        self.processor = BlipProcessor.from_pretrained(model_path)
        self.model = BlipForConditionalGeneration.from_pretrained(
            model_path, dtype=torch_dtype(self.device)
        ).to(self.device).eval()

    def run(self, params: ImageToTextRequest, inputs, on_step):
        import torch

        batch = self.processor(images=open_image(inputs["image"]),
                               text=params.prompt or None, return_tensors="pt")
        batch = {name: tensor.to(self.device) for name, tensor in batch.items()}
        batch["pixel_values"] = batch["pixel_values"].to(self.model.dtype)
        with torch.no_grad():
            ids = self.model.generate(**batch, max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                                      stopping_criteria=[TokenSteps(on_step)])
        text = self.processor.decode(ids[0], skip_special_tokens=True).strip()
        return [Output.from_text(text, params.seed)]

    def smoke(self) -> list[Output]:
        return self.run(ImageToTextRequest(seed=0), {"image": plain_png(32, 32)},
                 lambda step, total: None)


class TokenSteps:
    """A stopping criterion that never stops generation itself: it reports each token
    as a step, and lets the step callback stop the job (cancel, time limit) by raising."""

    def __init__(self, on_step):
        self.on_step = on_step
        self.tokens = 0

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        self.tokens += 1
        self.on_step(self.tokens, MAX_NEW_TOKENS)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
