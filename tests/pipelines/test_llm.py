"""The llm runner on the tiny Llama, in process: a seed gives the same text alone and in
a batch, a canceled row stops alone, the streamed chunks are the answer's text, and the
usage counts what was processed."""

import json

import pytest

from devstack.stack import MODELS_DIR
from devstack.tiny import build_missing
from tasks.pipelines.llm import LLMRequest
from workers.pipelines.base import RunnerContext
from workers.pipelines.llm import LLM
from workers.runtime import JobInterrupted


@pytest.fixture(scope="module")
def llm():
    build_missing(MODELS_DIR, ["tiny/llama"])
    return LLM(str(MODELS_DIR / "tiny/llama"), "cpu", RunnerContext(MODELS_DIR))


def request(i: int, **fields) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": f"question {i}"}], max_tokens=12,
                      temperature=0.9 if i % 2 else 0, seed=i, **fields)


def answer(outputs) -> dict:
    return json.loads(outputs[0].raw())


def test_the_same_text_alone_and_in_a_batch(llm):
    alone = [answer(llm.run(request(i), {}, lambda *step: None)) for i in range(4)]
    batch = llm.run_batch([(request(i), {}, lambda *step: None) for i in range(4)])
    assert [answer(o)["choices"][0]["message"] for o in batch] == \
        [a["choices"][0]["message"] for a in alone]
    usage = alone[0]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_a_canceled_row_stops_alone(llm):
    def cancel_at_third(step, total, chunk=None):
        if step >= 3:
            raise JobInterrupted("canceled", "The job was canceled.")

    outcomes = llm.run_batch([(request(0), {}, cancel_at_third),
                              (request(2), {}, lambda *step: None)])
    assert isinstance(outcomes[0], JobInterrupted)
    assert answer(outcomes[1])["usage"]["completion_tokens"] > 3


def test_streamed_chunks_are_the_answer(llm):
    chunks = []
    body = answer(llm.run(request(1, stream=True), {},
                          lambda step, total, chunk=None: chunk and chunks.append(chunk)))
    assert chunks and all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks)
    assert body["choices"][0]["message"]["content"].startswith(text)
    assert [c["usage"]["completion_tokens"] for c in chunks] == \
        sorted(c["usage"]["completion_tokens"] for c in chunks)
