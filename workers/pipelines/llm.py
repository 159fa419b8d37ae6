"""llm: chat completions with a causal LM through transformers' generate (Livepeer's runner
uses vLLM with meta-llama/Llama-3.1-8B-Instruct), one request per job, the engine in
workers/chat.py. Answer: Livepeer's LLMResponse, which is also OpenAI's chat completion
(the `object` field added), with the usage the gateway bills by.

Each token is a step. With `stream`, each piece of new text goes with its step as a chunk
(the runtime publishes it, the gateway streams it); without, steps are throttled
(StepThrottle)."""

import time
import uuid

from tasks.messages import Output
from tasks.pipelines.base import InvalidRequest
from tasks.pipelines.llm import LLMRequest
from workers.chat import ChatEngine, ChatRequest, ChatResult
from workers.pipelines.base import Pipeline, StepThrottle


def completion(result: ChatResult, model: str, request_id: str, created: int) -> dict:
    return {"id": request_id, "object": "chat.completion", "created": created, "model": model,
            "usage": result.usage(),
            "choices": [{"index": 0, "finish_reason": result.finish_reason,
                         "message": {"role": "assistant", "content": result.text}}]}


def chunk(delta: str, usage: dict, model: str, request_id: str, created: int,
          finish_reason: str | None = None) -> dict:
    """One event of a streamed answer: go-livepeer's chunk (the delta, the usage so far),
    which is also OpenAI's chat.completion.chunk."""
    return {"id": request_id, "object": "chat.completion.chunk", "created": created,
            "model": model, "usage": usage,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": delta},
                         "finish_reason": finish_reason}]}


class LLM(Pipeline):
    def load(self, model_path: str) -> None:
        self.engine = ChatEngine(model_path, self.device)
        self.model_path = model_path

    def chat_request(self, params: LLMRequest, on_step):
        """The engine's request for a job, its token callback reporting the job's steps,
        and how its result becomes the answer."""
        request_id, created = f"chatcmpl-{uuid.uuid4()}", int(time.time())
        model = params.model_name or self.model_path
        prompt_tokens = len(self.engine.prompt_ids(self.messages(params)))
        if prompt_tokens >= self.engine.context:
            raise InvalidRequest(f"The prompt ({prompt_tokens} tokens) is longer than the "
                                 f"model's context ({self.engine.context}).")
        steps = StepThrottle(on_step)

        def on_token(tokens: int, total: int, delta: str | None) -> None:
            if params.stream and delta:
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": tokens,
                         "total_tokens": prompt_tokens + tokens}
                steps(tokens, total, chunk(delta, usage, model, request_id, created))
            else:
                steps(tokens, total)

        request = ChatRequest(messages=self.messages(params), max_tokens=params.max_tokens,
                              temperature=params.temperature, top_p=params.top_p,
                              top_k=params.top_k, seed=params.seed, on_token=on_token)
        return request, lambda result: completion(result, model, request_id, created)

    @staticmethod
    def messages(params: LLMRequest) -> list[dict]:
        return [message.model_dump() for message in params.messages]

    def run(self, params: LLMRequest, inputs, on_step):
        outcome = self.run_batch([(params, inputs, on_step)])[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def run_batch(self, jobs: list) -> list:
        """[(params, inputs, on_step)] -> each job's outputs, or what stopped it (a prompt
        too long for the model, a cancel, a time limit): the other rows go on. Several
        jobs run in one generate(), each row with its own sampling, seed, limit and
        cancel, the same seed giving the same text alone or together; the slot runs one
        job at a time for now (README, "Language")."""
        outcomes: list = [None] * len(jobs)
        rows = []  # (index, request, answer) of the jobs that generate
        for index, (params, _, on_step) in enumerate(jobs):
            try:
                rows.append((index, *self.chat_request(params, on_step)))
            except Exception as exc:  # this job's own outcome
                outcomes[index] = exc
        results = self.engine.generate([request for _, request, _ in rows]) if rows else []
        for (index, _, answer), result in zip(rows, results):
            params, _, on_step = jobs[index]
            try:
                if result.error is not None:
                    raise result.error
                on_step(result.completion_tokens, result.completion_tokens)
                outcomes[index] = [Output.from_answer(answer(result), params.seed or 0)]
            except Exception as exc:
                outcomes[index] = exc
        return outcomes

    def smoke(self) -> list[Output]:
        return self.run(LLMRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=1,
                            temperature=0), {}, lambda *step: None)
