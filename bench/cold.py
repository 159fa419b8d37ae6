"""5. Cold vs warm: time to first image for a model loaded on demand against one held warm,
and what loading costs in a worker slot against a bare from_pretrained.

Each round starts fresh processes: a bare one (bench/bare_load.py: import diffusers,
from_pretrained, two images), a slot with tiny/sd warm, and (when the slot has --dynamic)
a slot that holds nothing and loads text-to-image models on demand from the cold queue.
Time to first image is the client's: async submit until the final server-sent event,
once the slot beats its heartbeat. Rounds take turns; medians count."""

import json
import os
import subprocess
import sys
import time

import requests

from bench.charts import bar_chart
from bench.jobs import follow_sse, submit_async, wait_until
from bench.options import Options
from bench.results import Row, Todo, write_results
from bench.stack import SD_ENTRY, bench_stack
from bench.stats import median

NAME = "cold"
BODY = {"model_id": "tiny/sd", "prompt": "a lighthouse at dawn", "width": 64, "height": 64,
        "num_inference_steps": 4, "seed": 42}
TORCH_THREADS = os.environ.get("BENCH_TORCH_THREADS", "1")  # as bench/worker.py, and why


def slot_has_dynamic_loading() -> bool:
    from devstack.servers import python_env

    out = subprocess.run([sys.executable, "-m", "workers.slot", "--help"], capture_output=True,
                         text=True, env=python_env({}), timeout=120)
    return "--dynamic" in out.stdout


def run(opts: Options) -> dict:
    from devstack.servers import python_env
    from devstack.stack import MODELS_DIR

    rounds = opts.pick(1, 1, 3)
    started = time.perf_counter()
    dynamic = slot_has_dynamic_loading()
    threads = {"OMP_NUM_THREADS": TORCH_THREADS, "MKL_NUM_THREADS": TORCH_THREADS}
    runs = {"bare": [], "warm": [], "cold": []}
    with bench_stack([SD_ENTRY], threads) as s:
        s.start_recorder()
        url = s.start_gateway()
        auth = {"Authorization": f"Bearer {s.api_key()}"}
        http = requests.Session()

        def first_image() -> tuple[float, dict]:
            t0 = time.time()
            view = follow_sse(http, url, auth, submit_async(http, url, auth, "/text-to-image",
                                                            BODY))
            if view["status"] != "succeeded":
                raise RuntimeError(f"text-to-image job {view['status']}: {view['error']}")
            return time.time() - t0, view

        def slot(name: str, *args: str) -> dict:
            t0 = time.time()
            proc = s.start_worker(name, *args)
            ready = time.time() - t0
            beat = s.stack.heartbeat(name) or {}
            loads = [m.get("load_seconds") for m in beat.get("models", []) if m.get("ready")]
            first, view = first_image()
            second, view2 = first_image()
            proc.terminate()
            proc.wait(60)
            wait_until(lambda: s.stack.heartbeat(name) is None, 30, 0.1,
                       f"{name}'s heartbeat to go")
            return {"start_to_ready_s": ready, "warm_load_s": loads[0] if loads else None,
                    "first_image_s": first, "second_image_s": second,
                    "first_timings": view.get("timings"), "second_timings": view2.get("timings"),
                    "first_worker": view.get("worker")}

        def bare() -> dict:
            t0 = time.time()
            out = subprocess.run([sys.executable, "-m", "bench.bare_load",
                                  str(MODELS_DIR / "tiny" / "sd"), json.dumps(BODY)],
                                 capture_output=True, text=True, timeout=300,
                                 env=python_env({**s.env, **threads}))
            if out.returncode:
                raise RuntimeError(out.stderr[-2000:])
            t = json.loads(out.stdout.strip().splitlines()[-1])
            return {"spawn_to_loaded_s": t["loaded"] - t0, "import_s": t["imported"] - t["started"],
                    "load_s": t["loaded"] - t["imported"],
                    "first_image_s": t["first_image"] - t["loaded"],
                    "second_image_s": t["second_image"] - t["first_image"]}

        for r in range(rounds):
            runs["bare"].append(bare())
            runs["warm"].append(slot(f"bench-warm-{r}", "--models", "tiny/sd"))
            if dynamic:
                runs["cold"].append(slot(f"bench-cold-{r}", "--models", "", "--dynamic",
                                         "text-to-image"))
        http.close()

    def med(name, key, sub=None):
        values = [(r[key] or {}).get(sub) if sub else r[key] for r in runs[name]]
        return median([v for v in values if v is not None])

    bare_load, bare_spawn = med("bare", "load_s"), med("bare", "spawn_to_loaded_s")
    warm_first = med("warm", "first_image_s")
    rows = []
    if dynamic:
        cold_first, cold_load = med("cold", "first_image_s"), med("cold", "first_timings", "load")
        rows += [
            Row("time to first image: cold (loaded on demand) / warm", cold_first, warm_first,
                "s"),
            Row("on-demand load in the slot / bare from_pretrained", cold_load, bare_load, "s"),
        ]
    else:
        rows.append(Todo("time to first image: cold / warm",
                         "TODO: workers.slot has no on-demand loading flag (--dynamic) yet"))
    rows += [
        Row("warm load in the slot (load + smoke) / bare from_pretrained",
            med("warm", "warm_load_s"), bare_load, "s"),
        Row("slot start→ready / bare process start→loaded", med("warm", "start_to_ready_s"),
            bare_spawn, "s"),
        Row("warm first image via gateway / bare pipe() call", warm_first,
            med("bare", "first_image_s"), "s"),
    ]
    details = {"rounds": rounds, "dynamic_loading": dynamic, "body": BODY,
               "torch_threads": TORCH_THREADS, "runs": runs}
    notes = ["Cold vs warm measured with workers.slot --dynamic." if dynamic else
             "TODO: cold vs warm not measured: workers.slot --help shows no on-demand "
             "loading flag yet; warm-slot load vs bare from_pretrained only."]

    def chart(path):
        groups = [("load (s)", [("bare from_pretrained", bare_load),
                                ("warm slot: load + smoke", med("warm", "warm_load_s"))]
                   + ([("on demand in slot", med("cold", "first_timings", "load"))]
                      if dynamic else [])),
                  ("process start→ready (s)", [("bare from_pretrained", bare_spawn),
                                               ("warm slot: load + smoke",
                                                med("warm", "start_to_ready_s"))]),
                  ("first image (s)", [("bare from_pretrained", med("bare", "first_image_s")),
                                       ("warm slot: load + smoke", warm_first)]
                   + ([("on demand in slot", med("cold", "first_image_s"))] if dynamic else []))]
        bar_chart(path, "Cold vs warm: loading and time to first image (s, lower is better)",
                  groups, "s", subtitle=f"tiny/sd on the CPU, {rounds} round(s) of fresh "
                                        f"processes")

    write_results(NAME, rows, details, opts, notes, time.perf_counter() - started, chart)
    return {"rows": rows, "notes": notes}
