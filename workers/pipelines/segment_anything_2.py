"""segment-anything-2: SAM 2 through transformers (Sam2Model), where Livepeer's runner uses
the `sam2` package's SAM2ImagePredictor (facebook/sam2-hiera-large). transformers loads the
HF-format checkpoints facebook/sam2.1-hiera-{tiny,small,base-plus,large}.

Answer, as Livepeer's route builds it from SAM2ImagePredictor.predict: masks, scores and
logits sorted by score (descending), each the str() of a nested list:
- masks: C x H x W at the image's size (C = 3 with multimask_output, else 1); raw logits
  with return_logits, else 0.0 / 1.0;
- scores: C predicted IoUs;
- logits: C x h x w low-resolution logits (h = w = 256 for SAM 2), clamped to +-32.
With several boxes every field gets a leading B axis.

transformers' Sam2ImageProcessor needs torchvision, which has no build for our CPU torch;
`Sam2Inputs` does the processor's work (resize to the model's square, rescale, normalize;
prompts scaled to that square; masks upsampled back), reading the same
preprocessor_config.json a real checkpoint ships."""

import json

from tasks.messages import Output
from tasks.pipelines.base import InvalidRequest
from tasks.pipelines.segment_anything_2 import SegmentAnything2Request, parse_array
from workers.pipelines.base import Pipeline, open_image, plain_png, torch_dtype

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def prompts(params: SegmentAnything2Request, width: int, height: int) -> dict:
    """The model's prompt inputs for one image from the request's JSON strings, in pixels
    of the original image; InvalidRequest for shapes SAM2ImagePredictor refuses."""
    import numpy as np

    def array(value, name, shape):
        data = parse_array(value, name, shape)
        return None if data is None else np.asarray(data, dtype=np.float32)

    try:
        points = array(params.point_coords, "point_coords", "N x 2")
        labels = array(params.point_labels, "point_labels", "N")
        boxes = array(params.box, "box", "4 or B x 4")
        mask = array(params.mask_input, "mask_input", "1 x H x W")
        # normalize_coords false: coordinates in [0, 1] of the image's size.
        scale = [1.0, 1.0] if params.normalize_coords else [width, height]
        out = {}
        if points is not None:
            points = points.reshape(-1, 2) if points.ndim < 3 else points  # (N,2), (B,N,2)
            labels = labels.reshape(points.shape[:-1])
            if points.ndim == 2:
                points, labels = points[None], labels[None]
            out["input_points"] = [(points * scale).tolist()]  # [image][object][point][xy]
            out["input_labels"] = [labels.astype(int).tolist()]
        if boxes is not None:
            boxes = boxes.reshape(-1, 4)
            out["input_boxes"] = [(boxes * (scale * 2)).tolist()]
            objects = len(out["input_points"][0]) if points is not None else len(boxes)
            if objects != len(boxes):
                if objects != 1:
                    raise InvalidRequest("With several boxes, give one set of points per box.")
                out["input_points"] = [out["input_points"][0] * len(boxes)]
                out["input_labels"] = [out["input_labels"][0] * len(boxes)]
    except ValueError:  # a reshape that does not fit
        raise InvalidRequest("point_coords must be N x 2, point_labels N and box 4 or B x 4.")
    if mask is not None:
        if mask.ndim != 3 or mask.shape[0] != 1:
            raise InvalidRequest("mask_input must be 1 x H x W.")
        out["mask"] = mask
    return out


class SegmentAnything2(Pipeline):

    def load(self, model_path: str) -> None:
        from transformers import Sam2Model

        self.processor = Sam2Inputs.from_pretrained(model_path)
        self.model = Sam2Model.from_pretrained(
            model_path, dtype=torch_dtype(self.device)).to(self.device).eval()

    def run(self, params: SegmentAnything2Request, inputs, on_step):
        import torch

        image = open_image(inputs["image"])
        asked = prompts(params, *image.size)
        mask = asked.pop("mask", None)
        batch = self.processor(image, **asked)
        original_size = batch.pop("original_size")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        pixels = batch.pop("pixel_values").to(self.model.dtype)
        if mask is not None:  # (1, 1, h, w): one low-res mask for the image's prompt
            batch["input_masks"] = torch.from_numpy(mask)[None].to(self.device, self.model.dtype)
        with torch.inference_mode():
            embeddings = self.model.get_image_embeddings(pixels)
            on_step(1, 2)  # the image encoder is most of the work
            out = self.model(image_embeddings=embeddings,
                             multimask_output=params.multimask_output, **batch)
        on_step(2, 2)
        return [Output.from_answer(self._answer(out, original_size, params.return_logits),
                                   params.seed or 0)]

    def _answer(self, out, original_size, return_logits: bool) -> dict:
        import torch

        low_res = out.pred_masks[0].float()  # (objects, C, h, w)
        masks = self.processor.upsample(low_res.cpu(), original_size)  # (objects, C, H, W)
        if not return_logits:
            masks = (masks > 0.0).float()
        scores = out.iou_scores[0].float().cpu()  # (objects, C)
        low_res = low_res.clamp(-32.0, 32.0).cpu()  # as SAM2ImagePredictor returns them
        order = torch.argsort(scores, dim=-1, descending=True)

        def by_score(tensor):
            return torch.stack([row[o] for row, o in zip(tensor, order)])

        masks, scores, low_res = by_score(masks), by_score(scores), by_score(low_res)
        if masks.shape[0] == 1:  # one prompt: the predictor's squeeze(0)
            masks, scores, low_res = masks[0], scores[0], low_res[0]
        return {"masks": str(masks.numpy().tolist()), "scores": str(scores.numpy().tolist()),
                "logits": str(low_res.numpy().tolist())}

    def smoke(self) -> list[Output]:
        return self.run(SegmentAnything2Request(point_coords="[[16, 16]]", point_labels="[1]", seed=0),
                 {"image": plain_png(32, 32)}, lambda step, total: None)


class Sam2Inputs:
    """Sam2Processor's work without torchvision: pixel_values, prompts in the model's square
    coordinates, and masks back at the image's size."""

    def __init__(self, size: int, mean, std, rescale: float = 1 / 255):
        self.size, self.mean, self.std, self.rescale = size, mean, std, rescale

    @classmethod
    def from_pretrained(cls, model_path: str):
        from pathlib import Path

        folder = Path(model_path)
        for name in ("preprocessor_config.json", "processor_config.json"):
            if (folder / name).exists():
                config = json.loads((folder / name).read_text())
                config = config.get("image_processor", config)
                break
        else:
            raise FileNotFoundError(f"no preprocessor_config.json in {model_path}")
        size = config.get("size", {"height": 1024, "width": 1024})
        if size.get("height") != size.get("width"):
            raise ValueError("SAM 2 takes square inputs")
        return cls(size["height"], config.get("image_mean", IMAGENET_MEAN),
                   config.get("image_std", IMAGENET_STD),
                   config.get("rescale_factor", 1 / 255))

    def __call__(self, image, input_points=None, input_labels=None, input_boxes=None):
        import numpy as np
        import torch
        from PIL import Image

        width, height = image.size
        square = image.resize((self.size, self.size), Image.Resampling.BILINEAR)
        pixels = np.asarray(square, dtype=np.float32) * self.rescale
        pixels = (pixels - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        out = {"pixel_values": torch.from_numpy(pixels).permute(2, 0, 1)[None].contiguous(),
               "original_size": (height, width)}
        scale = torch.tensor([self.size / width, self.size / height])
        if input_points is not None:  # [image][object][point][xy]
            out["input_points"] = torch.tensor(input_points, dtype=torch.float32) * scale
            out["input_labels"] = torch.tensor(input_labels, dtype=torch.int64)
        if input_boxes is not None:  # [image][box][x1 y1 x2 y2]
            out["input_boxes"] = torch.tensor(input_boxes, dtype=torch.float32) * scale.repeat(2)
        return out

    @staticmethod
    def upsample(low_res, original_size):
        """Low-res logits (..., h, w) -> (..., H, W) at the image's size, bilinear, as
        Sam2ImageProcessor.post_process_masks and SAM2ImagePredictor do."""
        import torch.nn.functional as F

        lead = low_res.shape[:-2]
        flat = low_res.reshape(-1, 1, *low_res.shape[-2:])
        up = F.interpolate(flat, original_size, mode="bilinear", align_corners=False)
        return up.reshape(*lead, *original_size)




