"""Decoding camera-sized JPEGs: tf_finetune's scaled decode against a full decode + resize.

    python benchmarks/jpeg_decode.py --data ../shared/data/hymenoptera [--size 224] [--runs 5]

Takes the first 20 images of ``--data``, enlarges them to 4032x3024 (a 12 MP phone photo),
encodes them as JPEG (quality 90), then times, alternating, ``--runs`` passes of
  full    tf.io.decode_image + tf.image.resize (what the TF-Hub recipe does)
  ours    tf_finetune.data.pipeline.decode_image_bytes (decode_jpeg with ``ratio``, then resize)
and prints images/s min/median/max, the ratio of the medians, and the mean absolute difference
between the two results (pixels in [0, 1]).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from head_only import summary  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="a folder with .jpg images (searched recursively)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    import tensorflow as tf
    from PIL import Image

    from tf_finetune.data.pipeline import decode_image_bytes

    photos = []
    for path in sorted(args.data.rglob("*.jpg"))[:20]:
        buffer = io.BytesIO()
        Image.open(path).convert("RGB").resize((4032, 3024), Image.BICUBIC).save(buffer, "JPEG", quality=90)
        photos.append(buffer.getvalue())
    data = tf.constant(photos)

    @tf.function
    def full(batch):
        return tf.map_fn(
            lambda d: tf.image.resize(
                tf.io.decode_image(d, channels=3, expand_animations=False, dtype=tf.float32), [args.size, args.size]
            ),
            batch,
            fn_output_signature=tf.float32,
        )

    @tf.function
    def ours(batch):
        return tf.map_fn(lambda d: decode_image_bytes(d, args.size, "bilinear"), batch, fn_output_signature=tf.float32)

    rates = {"full": [], "ours": []}
    outputs = {}
    for fn in (full, ours):  # trace once before timing
        outputs[fn.__name__] = fn(data).numpy()
    for _ in range(args.runs):
        for fn in (full, ours):
            started = time.perf_counter()
            fn(data)
            rates[fn.__name__].append(len(photos) / (time.perf_counter() - started))
    print(f"{len(photos)} JPEGs of 4032x3024 -> {args.size} px, {args.runs} runs")
    print(f"{'images/s':10} {'min':>7} {'median':>7} {'max':>7}")
    for name, values in rates.items():
        print(f"{name:10} {summary(values, 1)}")
    print(
        f"ours / full = {statistics.median(rates['ours']) / statistics.median(rates['full']):.2f}; "
        f"mean |difference| = {abs(outputs['ours'] - outputs['full']).mean():.4f}"
    )


if __name__ == "__main__":
    main()
