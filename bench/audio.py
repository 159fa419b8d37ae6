"""audio: the real-time factor of audio-to-text (seconds of work per second of audio) in
one worker slot against a bare transformers ASR pipeline of the same model on the same
decoded audio, the same generation settings (greedy, Livepeer's max_new_tokens).

tiny/whisper (Whisper's architecture, random weights) on the CPU; CLIP_SECONDS of audio
as a WAV, segment timestamps. The slot drains queued jobs (cancel_consumer, then
add_consumer); its time per job is its steady cycle, as bench/worker.py measures it (the
jobs after the first, from the first finish to the last), so the upload's decoding, the
events and the fetch of each next job count. The recorder runs
beside the slot (the arbiter of each job's outcome). Rounds take turns; medians count."""

import io
import os
import time

import requests

from bench.charts import bar_chart
from bench.jobs import wait_until
from bench.options import Options
from bench.results import Row, write_results
from bench.stack import UNLIMITED, WHISPER_ENTRY, bench_stack
from bench.stats import median
from bench.worker import cycle_stats

NAME = "audio"
TORCH_THREADS = int(os.environ.get("BENCH_TORCH_THREADS", "1"))
MODEL = WHISPER_ENTRY["model_id"]
QUEUE = f"audio-to-text:{MODEL}"
CLIP_SECONDS = 8.0


def clip() -> bytes:
    import numpy as np

    from workers.audio import wav_bytes

    rate = 16_000
    t = np.arange(int(CLIP_SECONDS * rate)) / rate
    return wav_bytes(0.4 * np.sin(2 * np.pi * (220 + 40 * t) * t), rate)


def bare_pipeline():
    from transformers import (AutoModelForSpeechSeq2Seq, AutoProcessor,
                              AutomaticSpeechRecognitionPipeline)

    from devstack.stack import MODELS_DIR

    path = str(MODELS_DIR / MODEL)
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForSpeechSeq2Seq.from_pretrained(path, attn_implementation="sdpa").eval()
    return AutomaticSpeechRecognitionPipeline(model=model, tokenizer=processor.tokenizer,
                                              feature_extractor=processor.feature_extractor)


def bare_run(asr, data: bytes, jobs: int) -> dict:
    from workers.audio import decode_audio
    from workers.pipelines.audio_to_text import MAX_NEW_TOKENS, NUM_BEAMS, SAMPLE_RATE

    t0 = time.perf_counter()
    for _ in range(jobs):
        samples = decode_audio(data, SAMPLE_RATE)
        asr({"raw": samples, "sampling_rate": SAMPLE_RATE}, return_timestamps=True,
            generate_kwargs={"max_new_tokens": MAX_NEW_TOKENS, "num_beams": NUM_BEAMS})
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rtf": seconds / (jobs * CLIP_SECONDS)}


def run(opts: Options) -> dict:
    import torch

    jobs = opts.pick(3, 8)
    rounds = opts.pick(1, 5)
    started = time.perf_counter()
    torch.set_num_threads(TORCH_THREADS)
    data = clip()
    asr = bare_pipeline()
    bare_run(asr, data, 1)  # warm-up

    threads = {"OMP_NUM_THREADS": str(TORCH_THREADS), "MKL_NUM_THREADS": str(TORCH_THREADS)}
    runs = {"bare": [], "worker": []}
    with bench_stack([WHISPER_ENTRY], {**UNLIMITED, **threads}) as s:
        s.start_worker("bench-asr", "--models", MODEL)
        s.start_recorder()
        url = s.start_gateway()
        auth = {"Authorization": f"Bearer {s.api_key()}", "Prefer": "respond-async"}

        def drain() -> dict:
            s.hold("bench-asr", QUEUE)
            ids = [requests.post(f"{url}/audio-to-text", headers=auth, timeout=60,
                                 data={"model_id": MODEL, "return_timestamps": "true"},
                                 files={"audio": ("clip.wav", io.BytesIO(data))}).json()["id"]
                   for _ in range(jobs)]
            t0 = time.time()
            s.hold("bench-asr", QUEUE, consuming=True)
            wait_until(lambda: s.sql("SELECT count(*) FROM jobs WHERE id = ANY(:ids) AND "
                                     "status = 'succeeded'", ids=ids)[0][0] == jobs,
                       timeout=600, interval=0.05, what="the jobs to be done")
            rows = s.sql("SELECT started_at, finished_at FROM jobs WHERE id = ANY(:ids)",
                         ids=ids)
            stats = cycle_stats([(r.started_at.timestamp(), r.finished_at.timestamp())
                                 for r in rows], ids[0], t0)
            return {**stats, "rtf": stats["cycle_ms"] / 1000 / CLIP_SECONDS}

        drain()  # warm-up of the worker's path
        for _ in range(rounds):
            runs["bare"].append(bare_run(asr, data, jobs))
            runs["worker"].append(drain())

    rtf = {name: median([r["rtf"] for r in results]) for name, results in runs.items()}
    rows = [Row("audio-to-text real-time factor (worker / bare transformers)", rtf["worker"],
                rtf["bare"], "s/s")]
    details = {"model": MODEL, "clip_seconds": CLIP_SECONDS, "jobs_per_round": jobs,
               "rounds": rounds, "torch_threads": TORCH_THREADS, "rtf": rtf, "runs": runs}
    notes = [f"{MODEL} (random weights) on the CPU, {CLIP_SECONDS:g} s WAV clips, segment "
             f"timestamps, greedy, {TORCH_THREADS} torch thread(s)."]

    def chart(path):
        bar_chart(path, "audio-to-text: real-time factor (lower is better)",
                  [("RTF", [("bare transformers", rtf["bare"]), ("worker slot", rtf["worker"])])],
                  "s/s", subtitle=f"{MODEL}, CPU, {jobs} clips x {rounds} rounds")

    write_results(NAME, rows, details, opts, notes, time.perf_counter() - started, chart)
    return {"rows": rows, "notes": notes}
