"""Every pipeline over plain HTTP through a real worker process, and the checks on
uploads: sizes, formats, limits, multipart shapes."""

import io

import pytest
from PIL import Image

from media import image_size, png, video_facts


def post_multipart(http, gateway, auth, path, fields, image=None, headers=None):
    files = {"image": ("in.png", image, "image/png")} if image is not None else None
    return http.post(f"{gateway}/{path}", data=fields, files=files,
                     headers={**auth, **(headers or {})})


def test_image_to_image_keeps_input_size_and_bills_it(http, gateway, auth):
    response = post_multipart(http, gateway, auth, "image-to-image",
                              {"prompt": "blue", "num_inference_steps": "4",
                               "num_images_per_prompt": "2", "seed": "4",
                               "safety_check": "false"}, png(48, 32),
                              headers={"Prefer": "respond-async"})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    from support import wait_for

    job = wait_for(lambda: (j := http.get(f"{gateway}/jobs/{job_id}", headers=auth).json())
                   ["status"] in ("succeeded", "failed") and j, timeout=120)
    assert job["status"] == "succeeded", job
    assert job["billable_units"] == 48 * 32 * 2
    urls = [m["url"] for m in job["result"]["images"]]
    assert [image_size(http.get(u).content) for u in urls] == [(48, 32), (48, 32)]


def test_image_to_video_is_h264_at_asked_fps(http, gateway, auth):
    response = post_multipart(http, gateway, auth, "image-to-video",
                              {"width": "64", "height": "48", "fps": "12",
                               "num_inference_steps": "2"}, png(64, 48))
    assert response.status_code == 200, response.text
    facts = video_facts(http.get(response.json()["images"][0]["url"]).content)
    assert facts["codec"] == "h264" and facts["fps"] == 12
    assert facts["frames"] == 4  # the model entry's frames, which are also billed
    assert (facts["width"], facts["height"]) == (64, 48)


def test_upscale_is_four_times(http, gateway, auth):
    response = post_multipart(http, gateway, auth, "upscale",
                              {"prompt": "crisp", "num_inference_steps": "2"}, png(24, 16))
    assert response.status_code == 200, response.text
    assert image_size(http.get(response.json()["images"][0]["url"]).content) == (96, 64)


def test_image_to_text_answers_a_caption_and_bills_the_input(http, gateway, auth):
    response = post_multipart(http, gateway, auth, "image-to-text", {"prompt": "a photo of"},
                              png(40, 30), headers={"Prefer": "respond-async"})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    from support import wait_status

    job = wait_status(http, gateway, auth, job_id, ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    assert set(job["result"]) == {"text"} and job["result"]["text"].startswith("a photo of")
    assert job["billable_units"] == 40 * 30 and job["progress"] == 1.0
    # The synchronous answer is the same caption: greedy decoding, the same image.
    again = post_multipart(http, gateway, auth, "image-to-text", {"prompt": "a photo of"},
                           png(40, 30))
    assert again.status_code == 200 and again.json() == job["result"]


@pytest.fixture
def client(app, worker):
    return app.test_client()


def multipart(client, auth, path, fields, image=None, filename="in.png"):
    data = dict(fields)
    if image is not None:
        data["image"] = (io.BytesIO(image), filename)
    return client.post(f"/{path}", data=data, headers=auth,
                       content_type="multipart/form-data")


def test_missing_image_is_422(client, auth):
    response = multipart(client, auth, "image-to-image", {"prompt": "x"})
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == ["body", "image"]


def test_not_an_image_and_a_corrupt_image_are_400(client, auth):
    # As Livepeer's runner answers: its spec declares no 415 on image routes, and the SDK
    # raises a typed error only for the statuses a route declares.
    assert multipart(client, auth, "upscale", {"prompt": "x"}, b"hello").status_code == 400
    truncated = png(64, 64)[:60]
    response = multipart(client, auth, "upscale", {"prompt": "x"}, truncated)
    assert response.status_code == 400 and "corrupt" in response.get_json()["detail"]["msg"]


def test_bytes_another_format_parser_chokes_on_are_400(client, auth):
    # Found by the fuzzer: an IPTC-looking header made PIL's IPTC parser raise OSError,
    # a 500. Only the formats we take are tried now.
    response = multipart(client, auth, "image-to-image", {"prompt": "x"},
                         b"\x1c\x08`\xff\xff\x1bv\xff*")
    assert response.status_code == 400
    assert "Unsupported image format" in response.get_json()["detail"]["msg"]


def test_gif_is_unsupported(client, auth):
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, format="GIF")
    assert multipart(client, auth, "image-to-image", {"prompt": "x"},
                     buf.getvalue()).status_code == 400


def test_decompression_bomb_is_refused_before_decoding(client, auth):
    # A PNG header claiming 30000x30000 pixels with almost no data.
    buf = io.BytesIO()
    Image.new("1", (30000, 30000)).save(buf, format="PNG")
    response = multipart(client, auth, "image-to-image", {"prompt": "x"}, buf.getvalue())
    assert response.status_code == 400


def test_upscale_input_is_capped_by_its_output(client, app, auth):
    side = app.extensions["settings"].max_image_side // 4 + 8
    response = multipart(client, auth, "upscale", {"prompt": "x"}, png(side, 8))
    assert response.status_code == 400


def test_wrong_content_types_are_400_where_livepeer_declares_no_415(client, auth):
    assert client.post("/image-to-image", json={"prompt": "x"},
                       headers=auth).status_code == 400
    assert multipart(client, auth, "text-to-image", {"prompt": "x"}).status_code == 400
    assert client.post("/audio-to-text", json={}, headers=auth).status_code == 415


def test_multipart_booleans_and_types(client, auth):
    response = multipart(client, auth, "image-to-image",
                         {"prompt": "x", "safety_check": "maybe"}, png())
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == ["body", "safety_check"]


def test_body_over_upload_limit_is_413(client, app, auth):
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = multipart(client, auth, "upscale", {"prompt": "x"}, b"\0" * (limit + 1))
    assert response.status_code == 413
    assert response.get_json() == {"detail": {"msg": "Request body too large."}}


def test_every_cap_is_a_maximum_in_openapi(client, app):
    settings = app.extensions["settings"]
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    t2i = schemas["TextToImageRequest"]["properties"]
    assert t2i["width"]["maximum"] == t2i["height"]["maximum"] == settings.max_image_side
    assert t2i["num_inference_steps"]["maximum"] == settings.max_steps
    assert t2i["num_images_per_prompt"]["maximum"] == settings.max_images_per_request
    assert t2i["prompt"]["maxLength"] == 2000
    assert schemas["ImageToImageRequest"]["properties"]["image"]["maxLength"] == \
        settings.upload_limit_bytes
    assert schemas["AudioToTextRequest"]["properties"]["audio"]["maxLength"] == \
        settings.upload_limit_bytes
    assert schemas["LLMRequest"]["properties"]["max_tokens"]["maximum"] == 4096
    assert schemas["ImageToVideoRequest"]["properties"]["num_inference_steps"]["maximum"] == \
        settings.max_steps


def test_each_route_declares_livepeers_statuses(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert {"400", "401", "422", "500"} <= set(paths["/upscale"]["post"]["responses"])
    assert "415" not in paths["/upscale"]["post"]["responses"]
    assert {"413", "415"} <= set(paths["/audio-to-text"]["post"]["responses"])
    assert "text/event-stream" in paths["/llm"]["post"]["responses"]["200"]["content"]


def test_openapi_is_generated_from_the_request_schemas(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    for path in ("/text-to-image", "/image-to-image", "/image-to-video", "/upscale"):
        assert "post" in spec["paths"][path]
    schemas = spec["components"]["schemas"]
    t2i = schemas["TextToImageRequest"]["properties"]
    assert t2i["width"]["default"] == 1024 and t2i["num_inference_steps"]["default"] == 50
    i2i = schemas["ImageToImageRequest"]
    assert i2i["properties"]["image"]["format"] == "binary"
    assert "image" in i2i["required"]
    assert schemas["ImageToVideoRequest"]["properties"]["fps"]["default"] == 6
    page = client.get("/docs")
    assert page.status_code == 200 and b"openapi.json" in page.data


def test_malformed_multipart_and_huge_json_are_4xx(client, app, auth):
    broken = client.post("/image-to-image", data=b"--xyz\r\nnot a part", headers={
        **auth, "Content-Type": "multipart/form-data; boundary=xyz"})
    assert 400 <= broken.status_code < 500
    huge = b'{"prompt": "' + b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1) + b'"}'
    response = client.post("/text-to-image", data=huge, headers=auth,
                           content_type="application/json")
    assert response.status_code == 413
