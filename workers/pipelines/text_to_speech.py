"""text-to-speech: VITS through transformers (VitsModel + VitsTokenizer; the
facebook/mms-tts-* checkpoints, 1100+ languages) in place of Livepeer's Parler-TTS, whose
package pins transformers 4.46 (README). Answer: a 16-bit mono WAV at OUTPUT_RATE.

VITS takes no description, so `voice_from_description` reads one into what VITS can vary:
- speed ("slow", "fast", "very", ...) -> speaking_rate (VITS scales its durations);
- expressiveness ("expressive", "animated", "monotone", "calm", ...) -> noise_scale (the
  variance of the prior: more is livelier, less is flatter);
- a speaker, for multi-speaker checkpoints: gender words pick from the config's `voices`
  when it names them (the tiny model does), else a stable hash of the description.
The text is cut into sentences, spoken one by one (a progress step each, a cancel point
between them) and joined with a short pause. The noise is seeded by the request's seed,
so the same request gives the same WAV."""

import hashlib
import re

from tasks.messages import Output
from tasks.pipelines.base import InvalidRequest
from tasks.pipelines.text_to_speech import TextToSpeechRequest
from workers.audio import resample, wav_bytes
from workers.pipelines.base import Pipeline, torch_dtype

PAUSE_S = 0.2  # silence between sentences
MAX_SENTENCE_CHARS = 400  # longer "sentences" are cut at spaces (VITS attends over all)
OUTPUT_RATE = 44_100  # Livepeer's runner answers at 44.1 kHz; MMS speaks at 16 kHz


def voice_from_description(description: str, config) -> dict:
    """speaker_id / speaking_rate / noise_scale for VITS from a free-text description."""
    words = set(re.findall(r"[a-z]+", (description or "").lower()))
    very = 1.5 if words & {"very", "extremely", "really"} else 1.0
    rate = 1.0
    if words & {"slow", "slowly", "slower", "leisurely"}:
        rate = 1 / (1 + 0.2 * very)
    elif words & {"fast", "quick", "quickly", "rapid", "rapidly", "faster"}:
        rate = 1 + 0.2 * very
    noise = config.noise_scale
    if words & {"expressive", "animated", "lively", "excited", "energetic", "dramatic"}:
        noise = config.noise_scale * (1 + (0.15 if "slightly" in words else 0.3) * very)
    elif words & {"monotone", "monotonous", "flat", "calm", "neutral", "steady"}:
        noise = config.noise_scale * 0.6
    voice = {"speaking_rate": rate, "noise_scale": noise, "speaker_id": None}
    if config.num_speakers > 1:
        voices = getattr(config, "voices", None) or {}  # ours: {"male": [...], "female": [...]}
        gender = ("female" if words & {"female", "woman", "girl", "she", "her"} else
                  "male" if words & {"male", "man", "boy", "he", "his"} else None)
        digest = int(hashlib.sha256((description or "").encode()).hexdigest(), 16)
        pool = voices.get(gender) or list(range(config.num_speakers))
        voice["speaker_id"] = pool[digest % len(pool)]
    return voice


def sentences(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"(?<=[.!?;:])\s+|\n+", text) if p.strip()]
    out = []
    for part in parts:
        while len(part) > MAX_SENTENCE_CHARS:
            cut = part.rfind(" ", 0, MAX_SENTENCE_CHARS)
            cut = cut if cut > 0 else MAX_SENTENCE_CHARS
            out.append(part[:cut])
            part = part[cut:].strip()
        if part:
            out.append(part)
    return out


class TextToSpeech(Pipeline):

    def load(self, model_path: str) -> None:
        from transformers import AutoTokenizer, VitsModel

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = VitsModel.from_pretrained(
            model_path, dtype=torch_dtype(self.device)).to(self.device).eval()

    def run(self, params: TextToSpeechRequest, inputs, on_step):
        import numpy as np
        import torch

        voice = voice_from_description(params.description, self.model.config)
        parts = sentences(params.text)
        rate = self.model.config.sampling_rate
        pause = np.zeros(int(PAUSE_S * rate), dtype=np.float32)
        audio = []
        saved = self.model.noise_scale  # forward reads it from the model, not the config
        # VitsModel draws its noise from the global RNG (it takes no generator): fork it,
        # so the job neither depends on nor disturbs anything else's randomness.
        devices = [self.model.device] if self.model.device.type == "cuda" else []
        try:
            self.model.noise_scale = voice["noise_scale"]
            with torch.random.fork_rng(devices=devices), torch.inference_mode():
                torch.manual_seed(params.seed or 0)
                for i, part in enumerate(parts, 1):
                    audio += self._speak(part, voice, pause)
                    on_step(i, len(parts))
        finally:
            self.model.noise_scale = saved
        if not audio:
            raise InvalidRequest("The text has nothing this model's vocabulary can speak.")
        samples = np.concatenate(audio[:-1])
        peak = float(np.abs(samples).max())
        if peak > 1.0:  # a hot voice: scaled, not clipped
            samples = samples / peak
        if OUTPUT_RATE != rate:
            samples = resample(samples, rate, OUTPUT_RATE)
        return [Output.from_bytes(wav_bytes(samples, OUTPUT_RATE), "audio/wav", params.seed or 0)]

    def _speak(self, text: str, voice: dict, pause) -> list:
        ids = self.tokenizer(text, return_tensors="pt").to(self.device)
        if ids["input_ids"].shape[1] <= 1:  # nothing the vocabulary can say
            return []
        out = self.model(**ids, speaker_id=voice["speaker_id"],
                         speaking_rate=voice["speaking_rate"])
        length = (int(out.sequence_lengths[0]) if out.sequence_lengths is not None
                  else out.waveform.shape[-1])
        return [out.waveform[0, :length].float().cpu().numpy(), pause]

    def smoke(self) -> list[Output]:
        return self.run(TextToSpeechRequest(text="hi", seed=0), {}, lambda step, total: None)
