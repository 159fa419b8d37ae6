"""llm: tokens per second of one worker slot against a bare transformers generate() of
the same model and prompts, and the runner's batched generation against one at a time.

The model is a Llama of the tiny family's architecture at a size where the CPU does real
work per token (bench/llama: hidden 512, 8 layers, 23 M parameters, random weights, built
once from its config). Eight requests, greedy, up to NEW_TOKENS tokens each.

- bare: model.generate() of each prompt in turn, in this process;
- the slot: a worker slot drains the eight jobs, queued while it held still (Celery's
  cancel_consumer), then taken (add_consumer), one job at a time;
- batched: the llm runner's run_batch() of the eight requests in one generate(), against
  the same runner one request at a time, in this process. A slot does not batch the jobs
  waiting in its queue yet (README, "Language"): this is what it would gain.

Tokens are those the answers count (usage.completion_tokens); a slot's time runs from its
first job's start to its last job's end (the worker's clock, as recorded). The recorder runs
beside the slot (it is the arbiter of each job's outcome: holding it would hold the jobs). The worker's
texts are checked to be the bare loop's. Rounds take turns; medians count."""

import json
import os
import time

from bench.charts import bar_chart
from bench.jobs import wait_until
from bench.load import submit_many
from bench.options import Options
from bench.results import Row, write_results
from bench.stack import LLM_ENTRY, UNLIMITED, bench_stack
from bench.stats import median

NAME = "llm"
TORCH_THREADS = int(os.environ.get("BENCH_TORCH_THREADS", "1"))
MODEL = LLM_ENTRY["model_id"]
QUEUE = f"llm:{MODEL}"
NEW_TOKENS = 48
PROMPTS = ["What is the capital of France?", "Tell me a joke about a cat.",
           "How many legs does a spider have?", "Write a short poem about the sea.",
           "Explain how a rainbow forms.", "Translate hello into Spanish.",
           "Summarise the quick brown fox in one sentence.", "Thank you!"]


def build_model() -> str:
    from devstack.stack import MODELS_DIR
    from devstack.tiny import build_with, is_built
    from devstack.tiny.language import build_llama

    if not is_built(MODELS_DIR / MODEL):
        build_with(lambda out, scratch: build_llama(out, scratch, size="medium"),
                   MODELS_DIR / MODEL)
    return str(MODELS_DIR / MODEL)


def body(prompt: str) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": NEW_TOKENS, "temperature": 0}


def bare_run(model, tokenizer, prompts) -> dict:
    """Each prompt's greedy completion by a bare generate(), one after the other."""
    import torch

    texts, tokens = [], 0
    t0 = time.perf_counter()
    for prompt in prompts:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                            add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=NEW_TOKENS, do_sample=False,
                                 temperature=None, top_p=None, top_k=None)
        new = out[0, ids["input_ids"].shape[1]:].tolist()
        eos = set(model.generation_config.eos_token_id)
        new = new[:next((i for i, t in enumerate(new) if t in eos), len(new))]
        tokens += len(new)
        texts.append(tokenizer.decode(new, skip_special_tokens=True).replace("\x00", ""))
    seconds = time.perf_counter() - t0
    return {"tokens": tokens, "seconds": seconds, "rate": tokens / seconds, "texts": texts}


def runner_run(runner, prompts, batched: bool) -> dict:
    """The llm runner on the prompts, all in one run_batch() or one after the other."""
    from tasks.pipelines.llm import LLMRequest

    jobs = [(LLMRequest.model_validate(body(p)), {}, lambda *step: None) for p in prompts]
    t0 = time.perf_counter()
    outcomes = runner.run_batch(jobs) if batched else [runner.run_batch([j])[0] for j in jobs]
    seconds = time.perf_counter() - t0
    tokens = sum(json.loads(o[0].raw())["usage"]["completion_tokens"] for o in outcomes)
    return {"tokens": tokens, "seconds": seconds, "rate": tokens / seconds}


def run(opts: Options) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workers.pipelines.llm import LLM

    rounds = opts.pick(1, 3)
    prompts = PROMPTS[:opts.pick(4, 8)]
    started = time.perf_counter()
    torch.set_num_threads(TORCH_THREADS)
    path = build_model()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    bare_run(model, tokenizer, prompts[:2])  # warm-up

    threads = {"OMP_NUM_THREADS": str(TORCH_THREADS), "MKL_NUM_THREADS": str(TORCH_THREADS)}
    runs = {"bare": [], "one at a time": [], "runner alone": [], "batched": []}
    texts = {}
    with bench_stack([LLM_ENTRY], {**UNLIMITED, **threads}) as s:
        s.start_recorder()
        url = s.start_gateway()
        auth = {"Authorization": f"Bearer {s.api_key()}"}

        def drain(worker: str) -> dict:
            s.hold(worker, QUEUE)
            ids = []
            for prompt in prompts:  # in order: the first queued is the first taken
                ids += submit_many(url, auth, body(prompt), 1, clients=1, path="/llm")["ids"]
            s.hold(worker, QUEUE, consuming=True)
            wait_until(lambda: s.sql("SELECT count(*) FROM jobs WHERE id = ANY(:ids) AND "
                                     "status = 'succeeded'", ids=ids)[0][0] == len(ids),
                       timeout=600, interval=0.05, what="the jobs to be done")
            found = {r.id: r for r in s.sql("SELECT id, started_at, finished_at, result "
                                            "FROM jobs WHERE id = ANY(:ids)", ids=ids)}
            rows = [found[i] for i in ids]
            tokens = sum(r.result["body"]["usage"]["completion_tokens"] for r in rows)
            seconds = (max(r.finished_at for r in rows) - min(r.started_at for r in rows)
                       ).total_seconds()
            texts[worker] = [r.result["body"]["choices"][0]["message"]["content"] for r in rows]
            return {"tokens": tokens, "seconds": seconds, "rate": tokens / seconds}

        one = "bench-llm-1"
        s.start_worker(one, "--models", MODEL)
        drain(one)  # warm-up of the worker's path
        for _ in range(rounds):
            runs["bare"].append(bare_run(model, tokenizer, prompts))
            runs["one at a time"].append(drain(one))
    runner = LLM(path, "cpu")
    for _ in range(rounds):
        runs["runner alone"].append(runner_run(runner, prompts, batched=False))
        runs["batched"].append(runner_run(runner, prompts, batched=True))

    same_text = {name: texts[name] == runs["bare"][0]["texts"] for name in texts}
    rate = {name: median([r["rate"] for r in results]) for name, results in runs.items()}
    rows = [
        Row("llm tokens/s, one job at a time (worker / bare generate)", rate["one at a time"],
            rate["bare"], "tok/s", (">=", 0.9)),
        Row(f"llm tokens/s, {len(prompts)} requests in one generate() (runner batched / one "
            "at a time; a slot does not batch yet)", rate["batched"], rate["runner alone"],
            "tok/s"),
    ]
    for results in runs.values():
        for result in results:
            result.pop("texts", None)
    details = {"model": MODEL, "size": "medium (hidden 512, 8 layers, 23 M params)",
               "new_tokens": NEW_TOKENS, "prompts": prompts, "rounds": rounds,
               "torch_threads": TORCH_THREADS, "rate": rate, "runs": runs,
               "same_text_as_bare": same_text}
    notes = [f"{MODEL} (random weights) on the CPU, greedy, up to {NEW_TOKENS} new tokens, "
             f"{TORCH_THREADS} torch thread(s); same text as bare: {same_text}."]

    def chart(path):
        bar_chart(path, "llm: tokens per second (higher is better)",
                  [("tokens/s", [(name, value) for name, value in rate.items()])],
                  "tok/s", subtitle=f"{MODEL}, CPU, {len(prompts)} requests x {rounds} rounds")

    write_results(NAME, rows, details, opts, notes, time.perf_counter() - started, chart)
    return {"rows": rows, "notes": notes}
