"""How long fitting a 4K result under the upload limit takes, per encoder and setting, at what size and quality.

    .venv/bin/python -m bench.encode [--runs 3]

The image is a synthetic 3840x2160 "photo" (gradients, shapes, grain, a slight blur: PNG cannot shrink it much,
about 15 MB); quality is PSNR against the original. The last line times bot.media.fit_image itself (decode
included) with a 10 MiB budget, as a result over Discord's default limit would be fitted.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import time
from typing import Any

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageStat, features

from bot.media import fit_image


def photo(width: int = 3840, height: int = 2160) -> Image.Image:
    rng = random.Random(1)
    red = Image.linear_gradient("L").resize((width, height))
    green = Image.linear_gradient("L").rotate(90).resize((width, height))
    blue = Image.effect_noise((width, height), 60).filter(ImageFilter.GaussianBlur(2))
    image = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(image)
    for _ in range(400):
        x, y, size = rng.randrange(width), rng.randrange(height), rng.randrange(20, 300)
        draw.ellipse((x, y, x + size, y + size), fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    grain = Image.effect_noise((width, height), 25).convert("RGB")
    return ImageChops.add(image, grain, scale=1.0, offset=-40).filter(ImageFilter.GaussianBlur(0.7))


def psnr(a: Image.Image, b: Image.Image) -> float:
    rms = ImageStat.Stat(ImageChops.difference(a, b)).rms
    mse = sum(x * x for x in rms) / len(rms)
    return 10 * math.log10(255 * 255 / mse) if mse else math.inf


def measure(image: Image.Image, runs: int, fmt: str, **options: Any) -> None:
    best = math.inf
    data = b""
    for _ in range(runs):
        out = io.BytesIO()
        started = time.perf_counter()
        image.save(out, fmt, **options)
        best = min(best, time.perf_counter() - started)
        data = out.getvalue()
    back = Image.open(io.BytesIO(data)).convert("RGB")
    settings = ", ".join(f"{k}={v}" for k, v in options.items())
    print(f"{fmt:5} {settings:28} {best * 1000:6.0f} ms  {len(data) / 1e6:5.2f} MB  PSNR {psnr(image, back):5.2f} dB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    image = photo()
    raw = io.BytesIO()
    image.save(raw, "PNG", compress_level=1)
    print(f"4K PNG: {len(raw.getvalue()) / 1e6:.1f} MB; libjpeg-turbo: {features.check_feature('libjpeg_turbo')}")
    for method in (0, 2, 4, 6):
        measure(image, args.runs, "WEBP", quality=85, method=method)
    for quality in (85, 90, 92, 95):
        measure(image, args.runs, "JPEG", quality=quality)
    best = math.inf
    for _ in range(args.runs):
        started = time.perf_counter()
        fitted = fit_image(raw.getvalue(), 10 * 1024 * 1024, "result")
        best = min(best, time.perf_counter() - started)
    print(
        f"fit_image (decode + encode), 10 MiB budget: {best * 1000:.0f} ms -> {fitted.filename}, "
        f"{len(fitted.data) / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
