"""A causal language model and its tokenizer, running chat completions in batches: one
generate() call for several requests (left-padded), each with its own sampling settings,
seed, token limit and callbacks. The llm runner (workers/pipelines/llm.py) runs it.

Sampling is done per row by `RowSampler`, with one torch.Generator per request: the same
seed gives the same text whether the request runs alone or in a batch (generate's own
sampling draws from one global RNG for all rows). Temperature 0 is greedy."""

import secrets
from dataclasses import dataclass, field
from typing import Callable

from tasks.pipelines.base import InvalidRequest
from workers.pipelines.base import torch_dtype


@dataclass
class ChatRequest:
    messages: list[dict]
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = -1  # -1 (Livepeer / vLLM) or 0: no top-k
    seed: int | None = None
    # on_token(tokens, total, delta): after each token, with the new text it completes
    # (None while a character is split across tokens); raising stops this request alone.
    on_token: Callable[[int, int, str | None], None] | None = None


@dataclass
class ChatResult:
    text: str = ""
    finish_reason: str = "length"  # "stop" (end of turn), "length" (max_tokens) or "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: BaseException | None = None  # what a callback raised: the request stopped there
    token_ids: list[int] = field(default_factory=list)

    def usage(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


class ChatEngine:
    """A causal LM and its tokenizer (chat template included); runs batches of requests."""

    def __init__(self, model_path: str, device: str = "cpu"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left")
        self.model = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=torch_dtype(device)).to(device).eval()
        self.device = device
        config = self.model.generation_config
        eos = config.eos_token_id if config.eos_token_id is not None else \
            self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = min(self.eos_ids)
        self.context = getattr(self.model.config, "max_position_embeddings", 4096)

    def decode(self, ids: list[int]) -> str:
        """Text of token ids; NUL characters dropped (no text store keeps them, and a
        byte-level model may write them)."""
        return self.tokenizer.decode(ids, skip_special_tokens=True).replace("\x00", "")

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                 tokenize=True, return_dict=False)
        return list(ids["input_ids"] if isinstance(ids, dict) else ids)

    def generate(self, requests: list[ChatRequest]) -> list[ChatResult]:
        """One generate() call for all `requests` (left-padded). Each row stops at its end
        of turn, its max_tokens, or when its callback raises; the batch ends with its last
        row."""
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        prompts = [self.prompt_ids(r.messages) for r in requests]
        results = [ChatResult(prompt_tokens=len(p)) for p in prompts]
        for prompt in prompts:
            if len(prompt) >= self.context:
                raise InvalidRequest(f"The prompt ({len(prompt)} tokens) is longer than the "
                                     f"model's context ({self.context}).")
        limits = [min(r.max_tokens, self.context - len(p)) for r, p in zip(requests, prompts)]
        width = max(map(len, prompts))
        input_ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts])
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])

        streamer = RowStreamer(self, requests, results, limits)
        kwargs = {}
        if any(r.temperature > 0 for r in requests):
            kwargs["logits_processor"] = LogitsProcessorList([RowSampler(requests, self.device)])
        with torch.inference_mode():
            self.model.generate(
                input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
                do_sample=False,  # RowSampler samples; plain argmax for greedy rows
                max_new_tokens=max(limits), pad_token_id=self.pad_id,
                eos_token_id=sorted(self.eos_ids), streamer=streamer,
                stopping_criteria=StoppingCriteriaList([streamer.done_criterion()]),
                # Turn off whatever sampling defaults the checkpoint's generation_config has:
                # they would otherwise warn beside do_sample=False.
                temperature=None, top_p=None, top_k=None,
                **kwargs,
            )
        return results


class RowSampler:
    """A logits processor that samples each row with its request's temperature, top-k,
    top-p and generator, and leaves only the drawn token finite: generate's greedy step
    then picks it. Rows at temperature 0 keep their scores (greedy). The filtering is
    done for all rows at once; only the draw is per row (one generator each)."""

    def __init__(self, requests: list[ChatRequest], device: str):
        import torch

        self.generators = []
        for request in requests:
            seed = request.seed if request.seed is not None else secrets.randbits(63)
            self.generators.append(torch.Generator(device=device).manual_seed(seed))
        self.greedy = [r.temperature <= 0 for r in requests]
        self.temperature = torch.tensor([r.temperature if r.temperature > 0 else 1.0
                                         for r in requests], device=device)[:, None]
        self.top_p = torch.tensor([r.top_p for r in requests], device=device)[:, None]
        self.top_k = [r.top_k if r.top_k > 0 else None for r in requests]

    def __call__(self, input_ids, scores):
        import torch

        logits = scores / self.temperature
        ordered, order = torch.sort(logits, dim=-1, descending=True, stable=True)
        vocab = scores.shape[-1]
        k = torch.tensor([min(k or vocab, vocab) for k in self.top_k], device=scores.device)
        drop = torch.arange(vocab, device=scores.device)[None, :] >= k[:, None]  # top-k
        ordered = ordered.masked_fill(drop, float("-inf"))
        probs = torch.softmax(ordered, dim=-1)
        drop = probs.cumsum(-1) - probs >= self.top_p  # top-p: never drops the first
        probs = torch.softmax(ordered.masked_fill(drop, float("-inf")), dim=-1)
        out = scores.clone()
        for row, generator in enumerate(self.generators):
            if self.greedy[row]:
                continue
            token = order[row, torch.multinomial(probs[row], 1, generator=generator)]
            out[row].fill_(float("-inf"))
            out[row, token] = 0.0
        return out


class RowStreamer:
    """generate()'s streamer for a batch: put() gets each step's tokens, one per row. It
    decodes each row incrementally (holding back a partial UTF-8 character), calls the
    row's on_text and on_step, and marks rows finished (end of turn, limit, callback
    error), which done_criterion() reports to generate so they stop taking tokens."""

    def __init__(self, engine: ChatEngine, requests, results, limits):
        self.engine = engine
        self.requests = requests
        self.results = results
        self.limits = limits
        self.finished = [False] * len(requests)
        # Incremental detokenization (as TGI/vLLM do): decode only the tokens from
        # `prefix` on, and hand out what goes past the text of tokens prefix..read.
        self.prefix = [0] * len(requests)
        self.read = [0] * len(requests)
        self.prompt_seen = False

    def put(self, value):
        if not self.prompt_seen:  # generate first hands over the prompt
            self.prompt_seen = True
            return
        for row, token in enumerate(value.reshape(-1).tolist()):
            if self.finished[row]:
                continue
            result, request = self.results[row], self.requests[row]
            if token in self.engine.eos_ids:
                result.finish_reason = "stop"
                self.finished[row] = True
                continue
            result.token_ids.append(token)
            result.completion_tokens += 1
            delta = self._decode(row)
            try:
                if request.on_token:
                    request.on_token(result.completion_tokens, self.limits[row], delta)
            except BaseException as err:  # noqa: BLE001 - the row's own callback stopped it
                result.error, result.finish_reason = err, "error"
                self.finished[row] = True
                continue
            if result.completion_tokens >= self.limits[row]:
                result.finish_reason = "length"
                self.finished[row] = True

    def _decode(self, row) -> str | None:
        """The new text the row's last token completes; None while nothing whole is new
        (a character split across tokens)."""
        ids, decode = self.results[row].token_ids, self.engine.decode
        before = decode(ids[self.prefix[row]:self.read[row]])
        after = decode(ids[self.prefix[row]:])
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return None
        self.prefix[row], self.read[row] = self.read[row], len(ids)
        self.results[row].text += after[len(before):]
        return after[len(before):]

    def end(self):
        """The whole text of each row, decoded at once (a held-back tail included)."""
        for result in self.results:
            result.text = self.engine.decode(result.token_ids)

    def done_criterion(self):
        """Rows at their own max_tokens (known from the length, as generate calls this
        before put() for the same step) or stopped by their callback. The flags tensor is
        rebuilt only when a flag changes: this runs once per token."""
        import torch

        state = {"width": None, "flags": None, "tensor": None}

        def criterion(input_ids, scores, **kwargs):
            if state["width"] is None:
                state["width"] = input_ids.shape[1] - 1
            generated = input_ids.shape[1] - state["width"]
            flags = [done or generated >= limit
                     for done, limit in zip(self.finished, self.limits)]
            if flags != state["flags"]:
                state["flags"] = flags
                state["tensor"] = torch.tensor(flags, dtype=torch.bool, device=input_ids.device)
            return state["tensor"]

        return criterion


