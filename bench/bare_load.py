"""The load baseline: a fresh process that imports diffusers, loads a pipeline with a bare
from_pretrained and makes two images, printing when each step ended (unix time) as JSON.

    python -m bench.bare_load .run/models/tiny/sd
"""

import json
import sys
import time


def main() -> None:
    path = sys.argv[1]
    started = time.time()
    import torch
    from diffusers import AutoPipelineForText2Image

    imported = time.time()
    pipe = AutoPipelineForText2Image.from_pretrained(path, torch_dtype=torch.float32).to("cpu")
    pipe.set_progress_bar_config(disable=True)
    loaded = time.time()
    params = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    times = []
    for _ in range(2):
        pipe(prompt=params.get("prompt", "a lighthouse"), width=params.get("width", 64),
             height=params.get("height", 64),
             num_inference_steps=params.get("num_inference_steps", 4),
             guidance_scale=params.get("guidance_scale", 7.5),
             generator=torch.Generator("cpu").manual_seed(params.get("seed", 0)))
        times.append(time.time())
    print(json.dumps({"started": started, "imported": imported, "loaded": loaded,
                      "first_image": times[0], "second_image": times[1],
                      "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
