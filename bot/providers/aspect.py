"""Edits keep their source image's shape: `auto` where the edit model takes it, else the nearest ratio it has."""

from __future__ import annotations

import dataclasses
import math

from bot.providers.catalog import MODELS, ImageOptions, supported_options


def nearest_ratio(width: int, height: int, allowed: tuple[str, ...]) -> str:
    """The "w:h" in `allowed` closest to width / height (by how much it stretches, so 2:1 and 1:2 weigh alike)."""
    target = math.log(width / height)

    def distance(ratio: str) -> float:
        w, h = (int(x) for x in ratio.split(":"))
        return abs(math.log(w / h) - target)

    return min((r for r in allowed if r != "auto"), key=distance)


def keep_source_ratio(model_id: str, options: ImageOptions, width: int, height: int) -> ImageOptions:
    """Options for an edit of a `width` x `height` image that keep its aspect ratio unless the user chose one."""
    if options.aspect_ratio is not None or width < 1 or height < 1:
        return options
    if "image_size" in MODELS[model_id].fields:
        # GPT Image 2: its edit default `auto` keeps the shape; a resolution alone needs the exact ratio.
        return dataclasses.replace(options, source_ratio=width / height) if options.resolution else options
    allowed = supported_options(model_id).get("aspect_ratio") or ()
    if "auto" in allowed:
        return dataclasses.replace(options, aspect_ratio="auto")
    return dataclasses.replace(options, aspect_ratio=nearest_ratio(width, height, allowed))
