#!/usr/bin/env python3
"""Read a TensorBoard log directory with TensorBoard's own loader.

Usage: tb_readback.py LOGDIR

Prints JSON (keys sorted):
  {"scalars": {tag: [[step, value], ...]},
   "images":  {tag: [[step, width, height, [r,g,b] at (row 0, col 0),
                      [r,g,b] at (row 0, last col)], ...]}}

width/height are the values stored in the Summary.Image proto (what
TensorBoard lays the image out by); the pixels come from decoding
encoded_image_string with PIL. Exits non-zero if the two disagree.
"""

import io
import json
import sys

from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2

    # 0 means "keep everything"; the defaults subsample images and scalars.
    acc = EventAccumulator(argv[1], size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()

    scalars = {
        tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in tags["scalars"]
    }

    images = {}
    for tag in tags["images"]:
        rows = []
        for e in acc.Images(tag):
            img = Image.open(io.BytesIO(e.encoded_image_string)).convert("RGB")
            if img.size != (e.width, e.height):
                print(
                    f"{tag} step {e.step}: proto says {e.width}x{e.height} (WxH) "
                    f"but PNG is {img.width}x{img.height}",
                    file=sys.stderr,
                )
                return 1
            rows.append(
                [
                    e.step,
                    e.width,
                    e.height,
                    list(img.getpixel((0, 0))),
                    list(img.getpixel((img.width - 1, 0))),
                ]
            )
        images[tag] = rows

    json.dump({"scalars": scalars, "images": images}, sys.stdout, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
