"""'|' splits a prompt as Livepeer's runner does, for the models that take several."""

from workers.pipelines.prompts import prompt_arguments, split_prompt

SDXL = {"prompt", "prompt_2", "negative_prompt", "negative_prompt_2", "width"}
SD3 = SDXL | {"prompt_3", "negative_prompt_3"}
SD15 = {"prompt", "negative_prompt", "width"}


def test_split_as_livepeer():
    assert split_prompt("a cat | in space |  ") == {"prompt": "a cat", "prompt_2": "in space"}
    assert split_prompt("one") == {"prompt": "one"}
    assert split_prompt("a|b|c|d|e") == {"prompt": "a", "prompt_2": "b", "prompt_3": "c",
                                         "prompt_4": "d|e"}


def test_models_with_several_text_encoders_get_the_parts():
    assert prompt_arguments(SDXL, "a cat | oil painting", "blurry | dark") == {
        "prompt": "a cat", "prompt_2": "oil painting", "negative_prompt": "blurry",
        "negative_prompt_2": "dark"}
    assert prompt_arguments(SD3, "a|b|c", "")["prompt_3"] == "c"


def test_models_with_one_prompt_get_it_whole():
    assert prompt_arguments(SD15, "a cat | oil painting", "") == {
        "prompt": "a cat | oil painting", "negative_prompt": None}
