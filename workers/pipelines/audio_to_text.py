"""audio-to-text: Whisper through transformers' automatic-speech-recognition pipeline, as
Livepeer's runner does (openai/whisper-large-v3 by default; AutoModelForSpeechSeq2Seq +
AutoProcessor), the audio decoded by PyAV.

Audio over 30 s is cut in 30 s windows (5 s strides each side) decoded in batches and
stitched, as Livepeer does; up to 30 s, one window. Progress: one step per generated token;
each batch of windows owns MAX_NEW_TOKENS steps, so the total is known before the first
token and the count never goes back; steps are throttled (StepThrottle)."""

import math

from tasks.messages import Output
from tasks.pipelines.audio_to_text import AudioToTextRequest
from workers.audio import decode_audio, wav_bytes
from workers.pipelines.base import Pipeline, StepThrottle, torch_dtype

SAMPLE_RATE = 16_000  # what every Whisper feature extractor takes
CHUNK_LENGTH_S = 30  # Whisper's window; Livepeer's chunk_length_s
MAX_NEW_TOKENS = 128  # Livepeer's runner value; Whisper's decoder has 448 positions in all
BATCH_SIZE = {"cuda": 16, "cpu": 4}  # windows decoded together (Livepeer: 16 on a GPU)
# Greedy, as Livepeer's runner decodes on its transformers 4.x: transformers 5's ASR
# pipeline would use 5 beams when the checkpoint names none (large-v3 does not).
NUM_BEAMS = 1


class AudioToText(Pipeline):

    def load(self, model_path: str) -> None:
        from transformers import (AutoModelForSpeechSeq2Seq, AutoProcessor,
                                  AutomaticSpeechRecognitionPipeline)

        processor = AutoProcessor.from_pretrained(model_path)
        self.model = AutoModelForSpeechSeq2Seq.from_pretrained(
            model_path, dtype=torch_dtype(self.device), attn_implementation="sdpa",
        ).to(self.device).eval()
        self.asr = AutomaticSpeechRecognitionPipeline(
            model=self.model, tokenizer=processor.tokenizer,
            feature_extractor=processor.feature_extractor, device=self.model.device)
        self.batch_size = BATCH_SIZE["cuda" if self.device.startswith("cuda") else "cpu"]

    def run(self, params: AudioToTextRequest, inputs, on_step):
        samples = decode_audio(inputs["audio"], SAMPLE_RATE)
        windows = count_windows(len(samples))
        kwargs = {}
        if windows > 1:  # Livepeer: no chunking (and no batch) up to one window
            kwargs = {"chunk_length_s": CHUNK_LENGTH_S, "batch_size": self.batch_size,
                      "ignore_warning": True}
        steps = WindowTokenSteps(on_step, math.ceil(windows / self.batch_size))
        try:
            result = self.asr({"raw": samples, "sampling_rate": SAMPLE_RATE},
                              return_timestamps=params.timestamps(),
                              generate_kwargs={"max_new_tokens": MAX_NEW_TOKENS,
                                               "num_beams": NUM_BEAMS,
                                               "stopping_criteria": [steps]},
                              **kwargs)
        finally:
            self._restore_attention()
        steps.finish()
        # chunks always present ([] without timestamps), as Livepeer's answer has them.
        body = {"text": result["text"],
                "chunks": [{"timestamp": list(chunk["timestamp"]), "text": chunk["text"]}
                           for chunk in result.get("chunks", [])]}
        return [Output.from_answer(body, params.seed or 0)]

    def _restore_attention(self) -> None:
        """Word timestamps make Whisper's generate switch the model to eager attention
        for good (it needs the cross-attention weights); the faster one comes back."""
        config = self.model.model.config
        if config._attn_implementation != "sdpa":
            config._attn_implementation = "sdpa"

    def smoke(self) -> list[Output]:
        import numpy as np

        silence = wav_bytes(np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
        return self.run(AudioToTextRequest(seed=0), {"audio": silence}, lambda step, total: None)


def count_windows(samples: int, chunk_length_s: float = CHUNK_LENGTH_S) -> int:
    """How many windows the ASR pipeline cuts `samples` into (its chunk_iter arithmetic,
    strides of chunk_length_s / 6 each side); 1 for audio up to one window."""
    chunk = int(round(chunk_length_s * SAMPLE_RATE))
    if samples <= chunk:
        return 1
    stride = int(round(chunk_length_s / 6 * SAMPLE_RATE))
    step = chunk - 2 * stride
    count = 0
    for start in range(0, samples, step):
        count += 1
        if start + chunk >= samples:
            break
    return count


class WindowTokenSteps:
    """A stopping criterion that never stops generation itself: it reports each token as
    a step and lets the step callback stop the job (cancel, time limit) by raising. A new
    generate() call (the next batch of windows) shows as a shorter input. Whisper may call
    generate() more often than planned (re-decoding a window from its last timestamp): the
    count then stays at the total."""

    def __init__(self, on_step, batches: int):
        self.on_step = StepThrottle(on_step)
        self.batches = batches
        self.total = batches * MAX_NEW_TOKENS
        self.batch = -1
        self.last_length = None
        self.step = 0

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        length = input_ids.shape[1]
        if self.last_length is None or length <= self.last_length:  # a new generate()
            self.batch += 1
            self.step = max(self.step, min(self.batch, self.batches - 1) * MAX_NEW_TOKENS)
        self.last_length = length
        self.step = min(self.step + 1, self.total)
        self.on_step(self.step, self.total)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    def finish(self) -> None:
        if self.step < self.total:
            self.step = self.total
            self.on_step(self.total, self.total)
