"""Prompts of diffusers pipelines, as Livepeer's runner passes them: "a | b | c" is three
prompts for the models that take several (SDXL's two text encoders, SD3's three)."""


def split_prompt(text: str, key: str = "prompt", max_splits: int = 3) -> dict[str, str]:
    """Livepeer's runner's split: "a | b | c" -> {prompt: a, prompt_2: b, prompt_3: c}."""
    parts = [part.strip() for part in text.split("|", max_splits) if part.strip()]
    return {(key if i == 0 else f"{key}_{i + 1}"): part for i, part in enumerate(parts)}


def prompt_arguments(accepts: set[str], prompt: str, negative_prompt: str) -> dict:
    """The prompt arguments of a diffusers call. Models that take several prompts (SDXL,
    SD3, Flux: prompt_2, ...) get the prompt split on "|" as Livepeer's runner splits it,
    the negative prompt too; others get it whole."""
    if "prompt_2" not in accepts:
        return {"prompt": prompt, "negative_prompt": negative_prompt or None}
    arguments = {**split_prompt(prompt), **split_prompt(negative_prompt, "negative_prompt")}
    arguments.setdefault("prompt", prompt)
    return {key: value for key, value in arguments.items() if key in accepts}
