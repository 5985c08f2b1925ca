"""The Hub's eight image models: one pydantic input model each, and how `/imagine` options map onto them.

Parameters, enums and defaults follow shared/reference/provider-api.md §1.3-1.4. Serialised with
`exclude_none=True`, so an option the user did not give is either the documented default or absent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from bot.errors import InvalidRequest
from bot.providers.prompts import clean_prompt, describe_invalid, is_blank

RATIOS_10 = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16")
EXTREME_RATIOS = ("4:1", "1:4", "8:1", "1:8")
ALL_RATIOS = ("auto", *RATIOS_10, *EXTREME_RATIOS)
ALL_RESOLUTIONS = ("0.5K", "1K", "2K", "4K")
QUALITIES = ("auto", "low", "medium", "high")
MAX_COUNT = 4  # the Hub states no maximum; its fal.ai upstream allows 1-4
MAX_SEED = 2_147_483_647
MAX_PROMPT_CHARS = 4000  # the Hub states no limit; this keeps requests and embeds sane
DEFAULT_SAFETY_TOLERANCE: Final = "4"  # the documented default; a server can choose another (`/settings safety`)

Ratio10 = Literal["21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16"]
RatioAuto10 = Literal["auto", "21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16"]
Ratio15 = Literal[
    "auto",
    "21:9",
    "16:9",
    "3:2",
    "4:3",
    "5:4",
    "1:1",
    "4:5",
    "3:4",
    "2:3",
    "9:16",
    "4:1",
    "1:4",
    "8:1",
    "1:8",
]
OutputFormat = Literal["jpeg", "png", "webp"]
SafetyTolerance = Literal["1", "2", "3", "4", "5", "6"]
Quality = Literal["auto", "low", "medium", "high"]
SizePreset = Literal["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"]
Prompt = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PROMPT_CHARS)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]
ImageUrls = Annotated[list[str], Field(min_length=1)]


class HubInput(BaseModel):
    """Fields common to every Hub image model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: Prompt
    num_images: Count = 1


class NanoBananaInput(HubInput):
    seed: Seed | None = None
    sync_mode: bool | None = None
    aspect_ratio: Ratio10 = "1:1"
    output_format: OutputFormat = "png"
    safety_tolerance: SafetyTolerance = DEFAULT_SAFETY_TOLERANCE
    limit_generations: bool | None = None


class NanoBanana2Input(HubInput):
    seed: Seed | None = None
    sync_mode: bool | None = None
    resolution: Literal["0.5K", "1K", "2K", "4K"] = "1K"
    aspect_ratio: Ratio15 = "auto"
    output_format: OutputFormat = "png"
    system_prompt: str | None = None
    thinking_level: Literal["minimal", "high"] | None = None
    safety_tolerance: SafetyTolerance = DEFAULT_SAFETY_TOLERANCE
    enable_web_search: bool | None = None
    limit_generations: bool = True


class NanoBananaProInput(HubInput):
    seed: Seed | None = None
    sync_mode: bool | None = None
    resolution: Literal["1K", "2K", "4K"] = "1K"
    aspect_ratio: RatioAuto10 = "1:1"
    output_format: OutputFormat = "png"
    system_prompt: str | None = None
    safety_tolerance: SafetyTolerance = DEFAULT_SAFETY_TOLERANCE
    enable_web_search: bool | None = None  # documented as disabled on this platform
    limit_generations: bool | None = None


class CustomSize(BaseModel):
    """A gpt-image-2 custom size; the rules are the vendor's (provider-api.md §1.4)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int
    height: int

    @model_validator(mode="after")
    def _vendor_rules(self) -> CustomSize:
        w, h = self.width, self.height
        if w % 16 or h % 16:
            raise ValueError("width and height must be multiples of 16")
        if max(w, h) > 3840:
            raise ValueError("the longest edge is at most 3840 px")
        if max(w, h) > 3 * min(w, h):
            raise ValueError("the aspect ratio is at most 3:1")
        if not 655_360 <= w * h <= 8_294_400:
            raise ValueError("total pixels must be between 655,360 and 8,294,400")
        return self


class GptImage2Input(HubInput):
    quality: Quality = "high"
    sync_mode: bool | None = None
    image_size: SizePreset | CustomSize = "landscape_4_3"
    output_format: OutputFormat = "png"


class NanoBananaEditInput(HubInput):
    image_urls: ImageUrls
    seed: Seed | None = None
    aspect_ratio: Ratio10 = "1:1"
    output_format: OutputFormat = "png"
    safety_tolerance: SafetyTolerance = DEFAULT_SAFETY_TOLERANCE


class NanoBanana2EditInput(HubInput):
    image_urls: ImageUrls
    seed: Seed | None = None
    resolution: Literal["0.5K", "1K", "2K", "4K"] = "1K"
    aspect_ratio: Ratio15 = "auto"
    output_format: OutputFormat = "png"
    safety_tolerance: SafetyTolerance = DEFAULT_SAFETY_TOLERANCE


class NanoBananaProEditInput(HubInput):
    image_urls: ImageUrls
    seed: Seed | None = None
    resolution: Literal["1K", "2K", "4K"] = "1K"
    aspect_ratio: RatioAuto10 = "1:1"
    output_format: OutputFormat = "png"
    safety_tolerance: SafetyTolerance = DEFAULT_SAFETY_TOLERANCE


class GptImage2EditInput(HubInput):
    image_urls: ImageUrls
    quality: Quality = "high"
    mask_url: str | None = None
    sync_mode: bool | None = None
    image_size: Literal["auto"] | SizePreset | CustomSize = "auto"
    output_format: OutputFormat = "png"


@dataclass(frozen=True)
class ModelSpec:
    """A Hub model as the bot offers it."""

    id: str
    label: str
    input_model: type[HubInput]
    edit: bool
    typical_seconds: float  # a prior for the poll schedule until real durations are learned

    @property
    def fields(self) -> dict[str, Any]:
        return dict(self.input_model.model_fields)


MODELS: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec("nano-banana", "Nano Banana", NanoBananaInput, False, 12),
        ModelSpec("nano-banana-2", "Nano Banana 2", NanoBanana2Input, False, 20),
        ModelSpec("nano-banana-pro", "Nano Banana Pro", NanoBananaProInput, False, 35),
        ModelSpec("gpt-image-2", "GPT Image 2", GptImage2Input, False, 45),
        ModelSpec("nano-banana-edit", "Nano Banana Edit", NanoBananaEditInput, True, 12),
        ModelSpec("nano-banana-2-edit", "Nano Banana 2 Edit", NanoBanana2EditInput, True, 20),
        ModelSpec("nano-banana-pro-edit", "Nano Banana Pro Edit", NanoBananaProEditInput, True, 35),
        ModelSpec("gpt-image-2-edit", "GPT Image 2 Edit", GptImage2EditInput, True, 45),
    )
}
TEXT_TO_IMAGE_MODELS = tuple(m for m, spec in MODELS.items() if not spec.edit)
EDIT_MODELS = tuple(m for m, spec in MODELS.items() if spec.edit)
MAX_EDIT_IMAGES = 4  # the Hub states no limit; four keeps uploads and /edit's options reasonable
PLACEHOLDER_URL = "https://placeholder.invalid/image.png"


def edit_model_for(model_id: str) -> str:
    """The edit twin of a text-to-image model (an edit model is its own twin)."""
    return model_id if model_id.endswith("-edit") else f"{model_id}-edit"


@dataclass(frozen=True)
class ImageOptions:
    """The options a user can give `/imagine`; None means not given.

    `source_ratio` is not a user option: an edit's source image width / height, so that a GPT Image 2 edit
    given only a resolution keeps the source's shape (see `bot.providers.aspect.keep_source_ratio`).
    """

    aspect_ratio: str | None = None
    resolution: str | None = None
    count: int | None = None
    seed: int | None = None
    quality: str | None = None
    # Not a user option: the server's level, sent to every model that takes it and ignored by the others.
    safety_tolerance: str | None = None
    # Not a user option: the source image's width / height, for edits that keep its shape.
    source_ratio: float | None = None

    def given(self) -> dict[str, Any]:
        """The user's options that were given (the server's safety level and the source's shape are not)."""
        return {
            k: v for k, v in self.__dict__.items() if v is not None and k not in ("safety_tolerance", "source_ratio")
        }


def _literal_values(annotation: Any) -> tuple[str, ...]:
    """The string values a Literal (possibly inside a union) allows."""
    values: list[str] = []
    for arg in get_args(annotation) or (annotation,):
        if isinstance(arg, str):
            values.append(arg)
        else:
            values.extend(a for a in get_args(arg) if isinstance(a, str))
    return tuple(values)


def supported_options(model_id: str) -> dict[str, tuple[str, ...] | None]:
    """User option name -> allowed values (None = any value in the option's range) for a model."""
    fields = MODELS[model_id].fields
    out: dict[str, tuple[str, ...] | None] = {}
    if "image_size" in fields:
        out["aspect_ratio"] = RATIOS_10
        out["resolution"] = ("1K", "2K", "4K")
    if "aspect_ratio" in fields:
        out["aspect_ratio"] = _literal_values(fields["aspect_ratio"].annotation)
    if "resolution" in fields:
        out["resolution"] = _literal_values(fields["resolution"].annotation)
    out["count"] = None
    if "seed" in fields:
        out["seed"] = None
    if "quality" in fields:
        out["quality"] = _literal_values(fields["quality"].annotation)
    return out


def describe_support(model_id: str) -> str:
    """A one-line summary of what a model accepts, for error messages and /models."""
    parts = []
    for name, values in supported_options(model_id).items():
        if name == "count":
            parts.append(f"`count` (1-{MAX_COUNT})")
        elif values is None:
            parts.append(f"`{name}`")
        else:
            parts.append(f"`{name}` ({', '.join(values)})")
    return ", ".join(parts)


_RESOLUTION_PIXELS = {"1K": 1024 * 1024, "2K": 2048 * 2048, "4K": 8_294_400}


def gpt_image_size(aspect_ratio: str | float, resolution: str) -> CustomSize:
    """A gpt-image-2 custom size with this ratio ("16:9" or width / height) near this resolution, within the
    vendor's rules (a ratio beyond 3:1 is brought just inside it)."""
    if isinstance(aspect_ratio, str):
        w_part, h_part = (int(x) for x in aspect_ratio.split(":"))
        ratio = w_part / h_part
    else:
        ratio = min(2.95, max(1 / 2.95, aspect_ratio))
    pixels = _RESOLUTION_PIXELS[resolution]
    height = math.sqrt(pixels / ratio)
    width = height * ratio
    scale = min(1.0, 3840 / max(width, height))
    width, height = width * scale, height * scale
    return CustomSize(width=int(width // 16) * 16, height=int(height // 16) * 16)


def build_input(model_id: str, prompt: str, options: ImageOptions) -> HubInput:
    """Validate a text-to-image request for a model; raise InvalidRequest with a message a user can act on."""
    spec = MODELS.get(model_id)
    if spec is None or spec.edit:
        raise InvalidRequest(
            "request.unknown_model", model=model_id, models=", ".join(f"`{m}`" for m in TEXT_TO_IMAGE_MODELS)
        )
    return _build(spec, prompt, options, {})


def build_edit_input(model_id: str, prompt: str, image_count: int, options: ImageOptions, has_mask: bool) -> HubInput:
    """Validate an edit request. Image URLs are placeholders here; the runner fills in the hosted ones."""
    spec = MODELS.get(model_id)
    if spec is None or not spec.edit:
        raise InvalidRequest("request.unknown_edit_model", model=model_id, models=", ".join(EDIT_MODELS))
    if image_count < 1:
        raise InvalidRequest("edit.attach_image")
    if image_count > MAX_EDIT_IMAGES:
        raise InvalidRequest("edit.too_many_images", count=image_count, limit=MAX_EDIT_IMAGES)
    extra: dict[str, Any] = {"image_urls": [PLACEHOLDER_URL] * image_count}
    if has_mask:
        if "mask_url" not in spec.fields:
            raise InvalidRequest("edit.no_mask", model=spec.label)
        extra["mask_url"] = PLACEHOLDER_URL
    return _build(spec, prompt, options, extra)


def _check_ranges(options: ImageOptions) -> None:
    """Options a modified client could send out of range, answered in words (Discord checks them, we check too)."""
    if options.count is not None and not (isinstance(options.count, int) and 1 <= options.count <= MAX_COUNT):
        raise InvalidRequest("request.range", option="count", low=1, high=MAX_COUNT)
    if options.seed is not None and not (isinstance(options.seed, int) and 0 <= options.seed <= MAX_SEED):
        raise InvalidRequest("request.range", option="seed", low=0, high=MAX_SEED)


def _build(spec: ModelSpec, prompt: str, options: ImageOptions, extra: dict[str, Any]) -> HubInput:
    prompt = clean_prompt(prompt)
    if is_blank(prompt):
        raise InvalidRequest("request.empty_prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidRequest("request.prompt_too_long", length=len(prompt), limit=MAX_PROMPT_CHARS)
    _check_ranges(options)
    supported = supported_options(spec.id)
    for name, value in options.given().items():
        if name not in supported:
            raise InvalidRequest(
                "request.unsupported_option", model=spec.label, option=name, supported=describe_support(spec.id)
            )
        allowed = supported[name]
        if allowed is not None and value not in allowed:
            raise InvalidRequest(
                "request.unsupported_value", model=spec.label, option=name, value=value, allowed=", ".join(allowed)
            )
    params: dict[str, Any] = {"prompt": prompt, **extra}
    if options.count is not None:
        params["num_images"] = options.count
    if options.seed is not None:
        params["seed"] = options.seed
    if options.quality is not None:
        params["quality"] = options.quality
    if options.safety_tolerance is not None and "safety_tolerance" in spec.fields:
        params["safety_tolerance"] = options.safety_tolerance
    if "image_size" in spec.fields:
        if options.aspect_ratio or options.resolution:
            shape = options.aspect_ratio or options.source_ratio or "4:3"
            params["image_size"] = gpt_image_size(shape, options.resolution or "1K")
    else:
        if options.aspect_ratio is not None:
            params["aspect_ratio"] = options.aspect_ratio
        if options.resolution is not None:
            params["resolution"] = options.resolution
    try:
        return spec.input_model.model_validate(params)
    except ValidationError as exc:
        raise InvalidRequest("request.invalid", model=spec.label, detail=describe_invalid(exc)) from exc


def api_params(payload: HubInput) -> dict[str, Any]:
    """The JSON `input` object for the API, without placeholder image URLs (filled in at submit time)."""
    params = payload.model_dump(mode="json", exclude_none=True)
    params.pop("image_urls", None)
    params.pop("mask_url", None)
    return params
