"""A tiny chat model for llm: a Llama (grouped-query attention, RoPE, SwiGLU) with a
byte-level BPE tokenizer trained offline, Llama 3's special tokens and chat template."""

SEED = 0


# Llama 3's chat format, with its special tokens.
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{{- message['content'] | trim }}{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}"
)
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
            "<|end_header_id|>", "<|eot_id|>", "<|finetune_right_pad_id|>"]
# What the tokenizer's merges are learnt from: any text still tokenizes (byte fallback).
CORPUS = """You are a helpful assistant. The user asks a question and the assistant answers it.
What is the capital of France? The capital of France is Paris. Tell me a joke about a cat.
How many legs does a spider have? A spider has eight legs. Write a short poem about the sea.
The quick brown fox jumps over the lazy dog. Explain how a rainbow forms in the sky after
rain: sunlight is refracted, reflected and dispersed by water droplets. Translate hello into
Spanish: hola. Summarise the following text in one sentence. Thank you, that was helpful!
"""

# Sizes for the batching benchmark (hidden, layers, heads, kv heads, intermediate).
SIZES = {
    "tiny": (64, 2, 4, 2, 128),
    "small": (256, 4, 8, 4, 688),
    "medium": (512, 8, 8, 4, 1376),
    "large": (1024, 8, 16, 8, 2816),
}


def tiny_chat_tokenizer(vocab_size: int = 512):
    """A byte-level BPE (GPT-2 / Llama 3 style) trained on CORPUS, with Llama 3's special
    tokens and chat template, as PreTrainedTokenizerFast. Deterministic: same merges on
    every build."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(CORPUS.splitlines(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
        pad_token="<|finetune_right_pad_id|>", chat_template=CHAT_TEMPLATE,
        padding_side="left", model_max_length=2048,
    )


def build_llama(out, scratch, size: str = "tiny") -> None:
    """A Llama-architecture chat model (grouped-query attention, RoPE, SwiGLU), random
    weights, with the tokenizer above. `size` picks a row of SIZES (tiny: ~0.1M params)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    tokenizer = tiny_chat_tokenizer()
    hidden, layers, heads, kv_heads, intermediate = SIZES[size]
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIALS}
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads,
        intermediate_size=intermediate, max_position_embeddings=2048,
        bos_token_id=ids["<|begin_of_text|>"], eos_token_id=ids["<|eot_id|>"],
        pad_token_id=ids["<|finetune_right_pad_id|>"], tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config).eval()
    # Llama 3 Instruct ends a turn with <|eot_id|> and a text with <|end_of_text|>.
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|begin_of_text|>"],
        eos_token_id=[ids["<|eot_id|>"], ids["<|end_of_text|>"]],
        pad_token_id=ids["<|finetune_right_pad_id|>"],
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
