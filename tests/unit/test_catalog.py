from __future__ import annotations

import pytest

from bot.errors import InvalidRequest
from bot.providers.catalog import (
    MODELS,
    RATIOS_10,
    CustomSize,
    ImageOptions,
    api_params,
    build_input,
    gpt_image_size,
)


def test_eight_models_with_their_documented_defaults() -> None:
    assert set(MODELS) == {
        "nano-banana",
        "nano-banana-2",
        "nano-banana-pro",
        "gpt-image-2",
        "nano-banana-edit",
        "nano-banana-2-edit",
        "nano-banana-pro-edit",
        "gpt-image-2-edit",
    }
    assert api_params(build_input("nano-banana", "cat", ImageOptions())) == {
        "prompt": "cat",
        "num_images": 1,
        "aspect_ratio": "1:1",
        "output_format": "png",
        "safety_tolerance": "4",
    }
    nb2 = api_params(build_input("nano-banana-2", "cat", ImageOptions()))
    assert nb2["aspect_ratio"] == "auto" and nb2["resolution"] == "1K" and nb2["limit_generations"] is True
    gpt = api_params(build_input("gpt-image-2", "cat", ImageOptions()))
    assert gpt == {
        "prompt": "cat",
        "num_images": 1,
        "quality": "high",
        "image_size": "landscape_4_3",
        "output_format": "png",
    }


def test_edit_models_require_images_and_only_gpt_takes_a_mask() -> None:
    with pytest.raises(ValueError, match="image_urls"):
        MODELS["nano-banana-edit"].input_model.model_validate({"prompt": "x"})
    MODELS["gpt-image-2-edit"].input_model.model_validate({"prompt": "x", "image_urls": ["u"], "mask_url": "m"})
    with pytest.raises(ValueError, match="mask_url"):
        MODELS["nano-banana-pro-edit"].input_model.model_validate({"prompt": "x", "image_urls": ["u"], "mask_url": "m"})


def test_options_map_onto_each_models_parameters() -> None:
    params = api_params(
        build_input("nano-banana-pro", "cat", ImageOptions(aspect_ratio="16:9", resolution="4K", count=3, seed=42))
    )
    assert params["aspect_ratio"] == "16:9" and params["resolution"] == "4K"
    assert params["num_images"] == 3 and params["seed"] == 42


@pytest.mark.parametrize(
    ("model", "options", "needle"),
    [
        ("nano-banana", ImageOptions(resolution="2K"), "does not support `resolution`"),
        ("gpt-image-2", ImageOptions(seed=1), "does not support `seed`"),
        ("nano-banana", ImageOptions(quality="low"), "does not support `quality`"),
        ("nano-banana-pro", ImageOptions(resolution="0.5K"), "Allowed values: 1K, 2K, 4K"),
        ("nano-banana", ImageOptions(aspect_ratio="8:1"), "Allowed values"),
        ("gpt-image-2", ImageOptions(aspect_ratio="auto"), "Allowed values"),
    ],
)
def test_unsupported_options_are_refused_with_what_the_model_supports(
    model: str, options: ImageOptions, needle: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        build_input(model, "cat", options)
    assert needle in info.value.message
    assert "`count`" in info.value.message or "Allowed values" in info.value.message


def test_bad_prompts_and_models() -> None:
    with pytest.raises(InvalidRequest, match="empty"):
        build_input("nano-banana", "   \n ", ImageOptions())
    with pytest.raises(InvalidRequest, match="limit is 4000"):
        build_input("nano-banana", "x" * 4001, ImageOptions())
    with pytest.raises(InvalidRequest, match="Unknown model `dall-e`"):
        build_input("dall-e", "cat", ImageOptions())
    with pytest.raises(InvalidRequest, match="Unknown model"):
        build_input("nano-banana-edit", "cat", ImageOptions())


@pytest.mark.parametrize("ratio", RATIOS_10)
@pytest.mark.parametrize("resolution", ["1K", "2K", "4K"])
def test_gpt_sizes_keep_the_vendor_rules(ratio: str, resolution: str) -> None:
    size = gpt_image_size(ratio, resolution)  # CustomSize validates the rules itself
    w, h = (int(x) for x in ratio.split(":"))
    assert abs(size.width / size.height - w / h) < 0.05


def test_custom_size_rules() -> None:
    for bad in (
        {"width": 1000, "height": 1024},
        {"width": 4096, "height": 2048},
        {"width": 3072, "height": 768},
        {"width": 512, "height": 512},
    ):
        with pytest.raises(ValueError):
            CustomSize(**bad)
    assert CustomSize(width=3840, height=2160).width == 3840
