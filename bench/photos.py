"""Benchmark the photo pipeline on a realistic 12-megapixel phone photo.

Prints ms per photo for the whole pipeline (thumbnail included), ms for a plain full-size decode
of the same file, their ratio (goal ≤ 0.8: draft decoding must beat a full decode) and peak memory.

    .venv/bin/python bench/photos.py [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

# The project root replaces this script's folder on the import path (nothing in bench/ may
# shadow a standard module).
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from PIL import Image  # noqa: E402

from bench.support.memory import peak_mb  # noqa: E402
from server.services.applications.photos import process  # noqa: E402

MAX_BYTES = 10 * 1024 * 1024


def make_photo(width: int = 4000, height: int = 3000) -> bytes:
    """Noise over gradients at quality 90: compresses like a real photo (~3–4 MB)."""
    gradient = Image.linear_gradient("L").resize((width, height))
    radial = Image.radial_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 40)
    im = Image.merge("RGB", (gradient, radial, noise))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90)
    return out.getvalue()


def timed(fn, runs: int) -> float:  # noqa: ANN001
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def child_peak_rss_mb(mode: str, path: Path) -> float:
    """Peak RSS of a fresh process that reads the photo, then runs `mode` once, in MB.

    tracemalloc does not see Pillow's C buffers, so the real figure is the process's max RSS;
    the "baseline" child only reads the input, and the difference is what `mode` adds.
    """
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--input", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip())


def child(mode: str, path: Path) -> None:
    content = path.read_bytes()
    if mode == "pipeline":
        process(content, max_bytes=MAX_BYTES)
    elif mode == "decode":
        Image.open(io.BytesIO(content)).load()
    print(peak_mb())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", choices=["baseline", "pipeline", "decode"])
    parser.add_argument("--input", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.input)
        return

    content = make_photo()
    print(f"input: 4000×3000 JPEG, {len(content) / 1e6:.2f} MB, {args.runs} runs (median)")

    def decode() -> None:
        Image.open(io.BytesIO(content)).load()

    def pipeline() -> None:
        process(content, max_bytes=MAX_BYTES)

    decode(), pipeline()  # warm up
    decode_ms = timed(decode, args.runs)
    pipeline_ms = timed(pipeline, args.runs)

    tracemalloc.start()
    result = process(content, max_bytes=MAX_BYTES)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.jpg"
        path.write_bytes(content)
        baseline = child_peak_rss_mb("baseline", path)
        pipeline_rss = child_peak_rss_mb("pipeline", path)
        decode_rss = child_peak_rss_mb("decode", path)

    ratio = pipeline_ms / decode_ms
    print(
        f"output: {result.width}×{result.height}, {len(result.jpeg) / 1e3:.0f} kB "
        f"+ thumbnail {len(result.thumbnail) / 1e3:.0f} kB"
    )
    print(f"pipeline (incl. thumbnail): {pipeline_ms:.1f} ms/photo")
    print(f"full-size decode alone:     {decode_ms:.1f} ms")
    print(
        f"ratio pipeline/decode:      {ratio:.2f} (goal ≤ 0.8) {'OK' if ratio <= 0.8 else 'MISSED'}"
    )
    print(
        f"peak memory, pipeline: +{pipeline_rss - baseline:.0f} MB RSS over reading the input "
        f"(Python objects alone: {peak / 1e6:.1f} MB traced)"
    )
    print(f"peak memory, full decode: +{decode_rss - baseline:.0f} MB RSS")


if __name__ == "__main__":
    main()
