"""Tiny speech models: Whisper (audio-to-text) and VITS (text-to-speech), random weights
of the real architectures, built from configs, tokenizers written by hand."""

import json
import math
from pathlib import Path

SEED = 0
SAMPLE_RATE = 16_000  # what every Whisper feature extractor expects


# A few of Whisper's language tokens, enough for its language detection to run as in a
# multilingual checkpoint (large-v3 has 100).
TINY_LANGUAGES = ["en", "de", "es", "fr"]


def build_whisper(out: Path, scratch: Path) -> None:
    """A Whisper checkpoint's shape (80-mel encoder over 30 s windows, decoder with
    Whisper's special, language, task and 1501 timestamp tokens, generation config with
    alignment heads for word timestamps), random weights, a byte-level BPE vocab with no
    merges: any text tokenizes, one byte per token."""
    import torch
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperProcessor,
                              WhisperTokenizer)
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    torch.manual_seed(SEED)

    # ids: 256 byte symbols, then the special tokens in Whisper's order, then timestamps.
    byte_symbols = list(bytes_to_unicode().values())
    vocab = {symbol: i for i, symbol in enumerate(byte_symbols)}
    specials = (["<|endoftext|>", "<|startoftranscript|>"]
                + [f"<|{code}|>" for code in TINY_LANGUAGES]
                + ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
                   "<|nospeech|>", "<|notimestamps|>"])
    for token in specials:
        vocab[token] = len(vocab)
    timestamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    for token in timestamps:
        vocab[token] = len(vocab)

    tokenizer = WhisperTokenizer(vocab=vocab, merges=[], model_max_length=448,
                                 pad_token="<|endoftext|>")  # the pipeline batches with it
    # The tokenizer finds timestamp tokens as "the last special id + 1": the specials are
    # registered as special, the timestamps as plain added tokens, as Whisper's own files do.
    tokenizer.add_special_tokens({"additional_special_tokens": specials[1:]})
    tokenizer.add_tokens(timestamps)
    assert tokenizer.convert_tokens_to_ids("<|notimestamps|>") + 1 == vocab["<|0.00|>"]
    assert tokenizer.all_special_ids[-1] == vocab["<|notimestamps|>"]

    eot, sot = vocab["<|endoftext|>"], vocab["<|startoftranscript|>"]
    config = WhisperConfig(
        vocab_size=len(vocab), num_mel_bins=80, d_model=32,
        encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64,
        decoder_layers=2, decoder_attention_heads=2, decoder_ffn_dim=64,
        max_source_positions=1500,  # 3000 mel frames (30 s) / 2: fixed by the features
        max_target_positions=448,
        pad_token_id=eot, bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=sot,
    )
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
        max_length=448,
        is_multilingual=True,
        lang_to_id={f"<|{code}|>": vocab[f"<|{code}|>"] for code in TINY_LANGUAGES},
        task_to_id={"translate": vocab["<|translate|>"], "transcribe": vocab["<|transcribe|>"]},
        no_timestamps_token_id=vocab["<|notimestamps|>"],
        prev_sot_token_id=vocab["<|startofprev|>"],
        begin_suppress_tokens=[vocab["Ġ"], eot], suppress_tokens=[],
        max_initial_timestamp_index=50,
        # (decoder layer, head) pairs whose cross-attention follows the audio: word
        # timestamps (return_token_timestamps) need them; real checkpoints list theirs.
        alignment_heads=[[1, 0], [1, 1]],
        return_timestamps=False,
    )
    model.save_pretrained(out)
    processor = WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=80, sampling_rate=SAMPLE_RATE),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(out)


# facebook/mms-tts-eng's alphabet: lower-case letters, space, apostrophe, hyphen; id 0 is
# the blank put between characters. No digits: "2024" is dropped, as with the real one.
TINY_VOCAB = ["_", " ", "'", "-"] + list("abcdefghijklmnopqrstuvwxyz")


def build_vits(out: Path, scratch: Path) -> None:
    """A VITS shaped as MMS-TTS (text encoder, flow, HiFi-GAN decoder at 16 kHz with
    MMS's 256x upsampling) with the plain duration predictor, 4 speakers (two named male
    and two female in the config), random weights; tokenizer files written by hand."""
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    torch.manual_seed(SEED)
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(TINY_VOCAB)}))
    tokenizer = VitsTokenizer(str(scratch / "vocab.json"), language="eng", add_blank=True,
                              normalize=True, phonemize=False, is_uroman=False)
    config = VitsConfig(
        vocab_size=len(TINY_VOCAB), hidden_size=16, num_hidden_layers=2,
        num_attention_heads=2, ffn_dim=32, flow_size=16, spectrogram_bins=16,
        prior_encoder_num_flows=2, prior_encoder_num_wavenet_layers=2,
        posterior_encoder_num_wavenet_layers=2,
        duration_predictor_num_flows=2, duration_predictor_filter_channels=16,
        upsample_initial_channel=32, upsample_rates=[8, 8, 2, 2],
        upsample_kernel_sizes=[16, 16, 4, 4], resblock_kernel_sizes=[3, 7],
        resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
        num_speakers=4, speaker_embedding_size=16, sampling_rate=16_000,
        # MMS uses the stochastic duration predictor; with random weights it makes every
        # character last seconds. The plain one, its output fixed below, gives ~4.5 frames
        # (72 ms) per token, as trained models roughly do, so speaking_rate shows.
        use_stochastic_duration_prediction=False,
    )
    config.voices = {"male": [0, 2], "female": [1, 3]}  # ours; kept in config.json
    model = VitsModel(config).eval()
    with torch.no_grad():
        model.duration_predictor.proj.weight.zero_()
        model.duration_predictor.proj.bias.fill_(math.log(4.5))  # log-duration in frames
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
