"""Tiny vision models: BLIP captioning (image-to-text) and SAM 2 (segment-anything-2),
random weights of the real architectures, built from configs."""

import json
from pathlib import Path

SEED = 0
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def tiny_bert_tokenizer(directory: Path):
    """BLIP's BERT tokenizer on a vocab of the special tokens, the letters, digits and
    punctuation, each also as a word piece ("##a"): any plain-text prompt tokenizes,
    letter by letter, and decodes back to itself."""
    import string

    from transformers import BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    symbols = list(string.ascii_lowercase + string.digits + string.punctuation)
    pieces = [f"##{symbol}" for symbol in string.ascii_lowercase + string.digits]
    (directory / "vocab.txt").write_text("\n".join(specials + symbols + pieces) + "\n")
    # BLIP starts every caption with [DEC], as Salesforce's checkpoints configure it.
    return BertTokenizer(str(directory / "vocab.txt"), bos_token="[DEC]", model_max_length=64)


def build_blip(out: Path, scratch: Path) -> None:
    """A BLIP image-captioning model (ViT image encoder, BERT text decoder with
    cross-attention), as Salesforce/blip-image-captioning-* are, with its processor."""
    import torch
    from transformers import (BlipConfig, BlipForConditionalGeneration, BlipImageProcessor,
                              BlipProcessor)

    torch.manual_seed(SEED)
    tokenizer = tiny_bert_tokenizer(scratch / "tokenizer")
    config = BlipConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 37,
                     "num_attention_heads": 4, "num_hidden_layers": 2,
                     "encoder_hidden_size": 32, "max_position_embeddings": 64,
                     "bos_token_id": tokenizer.bos_token_id,
                     "sep_token_id": tokenizer.sep_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4,
                       "num_hidden_layers": 2, "image_size": 32, "patch_size": 8},
        projection_dim=32,
    )
    BlipForConditionalGeneration(config).eval().save_pretrained(out)
    processor = BlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer)
    processor.save_pretrained(out)


TINY_IMAGE_SIZE = 128  # real SAM 2: 1024


def build_sam2(out: Path, scratch: Path) -> None:
    """A SAM 2.1-shaped model (Hiera backbone with four stages, FPN neck, prompt encoder,
    two-way mask decoder with high-resolution features) at 128 px, sized as transformers'
    own tests build it, with its processor: images resized to 128 x 128, low-res masks
    32 x 32 (the real model: 1024 and 256)."""
    import torch
    from transformers import (Sam2Config, Sam2HieraDetConfig, Sam2MaskDecoderConfig,
                              Sam2Model, Sam2PromptEncoderConfig, Sam2VisionConfig)

    torch.manual_seed(SEED)
    size = TINY_IMAGE_SIZE
    backbone = Sam2HieraDetConfig(
        hidden_size=12, num_channels=3, image_size=size, patch_stride=4, patch_kernel_size=7,
        patch_padding=3, blocks_per_stage=[1, 2, 7, 2], embed_dim_per_stage=[12, 24, 48, 96],
        num_attention_heads_per_stage=[1, 2, 4, 8],  # global attention in blocks 5, 7, 9
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone, backbone_channel_list=[96, 48, 24, 12],
        backbone_feature_sizes=[[size // 4, size // 4], [size // 8, size // 8],
                                [size // 16, size // 16]],
        fpn_hidden_size=32,
    )
    config = Sam2Config(
        vision_config=vision,
        prompt_encoder_config=Sam2PromptEncoderConfig(
            hidden_size=32, image_size=size, patch_size=16, mask_input_channels=8),
        mask_decoder_config=Sam2MaskDecoderConfig(
            hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=4,
            iou_head_hidden_dim=32),
    )
    Sam2Model(config).eval().save_pretrained(out)
    # The processor's files, written by hand (Sam2ImageProcessor cannot be built without
    # torchvision): the keys of facebook/sam2.1-hiera-*'s preprocessor_config.json.
    (out / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Sam2ImageProcessorFast", "processor_class": "Sam2Processor",
        "do_resize": True, "size": {"height": size, "width": size},
        "mask_size": {"height": size // 4, "width": size // 4}, "resample": 2,
        "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD, "do_convert_rgb": True,
    }, indent=2))
