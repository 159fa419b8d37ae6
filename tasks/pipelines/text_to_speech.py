"""text-to-speech: speech from text, as a WAV. Livepeer's default model is Parler-TTS,
whose package cannot live beside transformers 5 (README): ours is VITS (facebook/mms-tts-*),
with the description read into what VITS can vary (speaker, speed, expressiveness)."""

from typing import Callable, ClassVar

from pydantic import BaseModel, Field

from tasks.pipelines.base import (
    MAX_PROMPT_CHARS, InvalidRequest, Limits, PipelineRequest, PipelineSpec, check_text,
)

DEFAULT_DESCRIPTION = ("A male speaker delivers a slightly expressive and animated speech "
                       "with a moderate speed and pitch.")


class MediaURL(BaseModel):
    url: str


class AudioResponse(BaseModel):
    audio: MediaURL


class TextToSpeechRequest(PipelineRequest):
    SUMMARY: ClassVar[str] = "Speak a text (a WAV), in the voice a description asks for."
    RESPONSE: ClassVar[type[BaseModel]] = AudioResponse
    CAPS: ClassVar[dict] = {"text": ("maxLength", MAX_PROMPT_CHARS),
                            "description": ("maxLength", MAX_PROMPT_CHARS)}

    text: str = Field("", description="The text to speak.")
    description: str = Field(DEFAULT_DESCRIPTION,
                             description="The speaker: gender, speed, expressiveness.")

    def check(self, limits: Limits) -> None:
        if not self.text.strip():
            raise InvalidRequest("Text must be provided.")
        check_text("text", self.text)
        check_text("description", self.description)

    def billable_units(self, uploads: dict) -> int:
        return len(self.text)  # characters, as go-livepeer bills text-to-speech

    @classmethod
    def render(cls, result: dict, url: Callable[[str], str]) -> dict:
        if "body" in result:  # a fallback gateway's answer, as it gave it
            return result["body"]
        return {"audio": {"url": url(result["images"][0]["media"])}}


SPEC = PipelineSpec(
    "text-to-speech", TextToSpeechRequest,
    runner="workers.pipelines.text_to_speech:TextToSpeech",
    default_model="facebook/mms-tts-eng",
    tiny_models={"tiny/vits": "devstack.tiny.speech:build_vits"})
