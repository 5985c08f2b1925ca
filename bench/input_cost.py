"""What checking one input image costs at worst: peak memory and time, now and at an older commit.

    .venv/bin/python -m bench.input_cost [--before b99b937]

Each (implementation, file) runs in a fresh process, so the peak RSS growth (VmHWM) is that check's alone.
`--before` loads `bot/media.py` as it was at that commit (its `check_input` needs only Pillow).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from PIL import Image

from tests.fakes import hostile

CHILD = r"""
import importlib.util, json, sys, time
def hwm():  # peak RSS of this process in KiB (ru_maxrss may carry over the forking parent's peak)
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
spec = importlib.util.spec_from_file_location("impl", sys.argv[1])
impl = sys.modules["impl"] = importlib.util.module_from_spec(spec); spec.loader.exec_module(impl)
data = open(sys.argv[2], "rb").read()
base = hwm()
started = time.perf_counter()
try:
    impl.check_input(data, "x", None); outcome = "accepted"
except impl.InputImageError as exc:
    outcome = "refused: " + str(exc)[4:60]
except Exception as exc:
    outcome = "CRASH " + type(exc).__name__
seconds = time.perf_counter() - started
peak = (hwm() - base) / 1024
print(json.dumps({"seconds": seconds, "mib": peak, "outcome": outcome}))
"""


def sparse_noise_png(width: int, height: int, noisy_rows: int) -> bytes:
    """A valid RGBA PNG that is mostly zeros with some random rows: big enough on disk to pass the bomb check."""
    rng = random.Random(6)
    noisy = set(rng.sample(range(height), noisy_rows))
    packer = zlib.compressobj(6)
    zero = b"\0" * (1 + width * 4)
    parts = [packer.compress(b"\0" + rng.randbytes(width * 4) if y in noisy else zero) for y in range(height)]
    body = b"".join(parts) + packer.flush()
    return (
        hostile.PNG_SIGNATURE + hostile.ihdr(width, height) + hostile.chunk(b"IDAT", body) + hostile.chunk(b"IEND", b"")
    )


def gradient_jpeg(width: int, height: int, *, progressive: bool = False) -> bytes:
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.effect_noise((width, height), 64).convert("RGB")
    out = io.BytesIO()
    Image.blend(image, noise, 0.1).save(out, "JPEG", quality=75, progressive=progressive)
    return out.getvalue()


def inputs() -> dict[str, bytes]:
    return {
        "PNG bomb, 40 MP in 152 KiB": hostile.png_bomb(),
        "GIF bomb, 40 MP in 31 KiB": hostile.gif_bomb(),
        "GIF, 1200 frames on a 40 MP canvas": hostile.gif_many_frames(),
        "real-ish PNG, 40 MP in ~3 MB": sparse_noise_png(6324, 6324, 110),
        "JPEG, 40 MP": gradient_jpeg(6324, 6324),
        "progressive JPEG, 40 MP": gradient_jpeg(6324, 6324, progressive=True),
        "progressive JPEG, 20 MP": gradient_jpeg(5472, 3648, progressive=True),
    }


def measure(implementation: Path, path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(implementation), str(path)], capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a commit whose bot/media.py check_input to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        implementations = {"now": Path("bot/media_input.py")}
        if args.before:
            old = subprocess.run(
                ["git", "show", f"{args.before}:bot/media.py"], capture_output=True, text=True, check=True
            ).stdout
            (folder / "before.py").write_text(old)
            implementations = {"before": folder / "before.py", **implementations}
        print(f"{'input':42} {'code':7} {'time':>7} {'peak RSS':>9}  outcome")
        for name, data in inputs().items():
            path = folder / "input.bin"
            path.write_bytes(data)
            for label, implementation in implementations.items():
                r = measure(implementation, path)
                print(f"{name:42} {label:7} {r['seconds']:6.2f}s {r['mib']:6.0f} MiB  {r['outcome']}")


if __name__ == "__main__":
    main()
