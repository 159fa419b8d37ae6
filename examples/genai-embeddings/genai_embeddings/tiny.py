"""A tiny random-weight BERT with a letter-level WordPiece vocab, built offline, for trying
the pipeline without a download."""

import string
from pathlib import Path


def build_tiny_encoder(out: Path, scratch: Path) -> None:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(0)
    scratch.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    symbols = list(string.ascii_lowercase + string.digits + string.punctuation)
    pieces = [f"##{symbol}" for symbol in string.ascii_lowercase + string.digits]
    (scratch / "vocab.txt").write_text("\n".join(specials + symbols + pieces) + "\n")
    tokenizer = BertTokenizer(str(scratch / "vocab.txt"), model_max_length=128)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=37,
                        max_position_embeddings=128)
    BertModel(config).eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
