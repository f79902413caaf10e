"""Real face embeddings for tests/test_identity.py, run with the identity env's python:

    .venvs/identity/bin/python tests/identity_embed.py CLIPS_DIR OUT.json

For every 10th frame of the dev set's real face videos (faces_franck, faces_carphone, faces_single, faces_wolf): the
face dlib's HOG detector finds, aligned and described by steps.identity.faces (the workflow's own code), with its
size, sharpness and frontality; and franck's frame 100 shrunk (face 12 px) and blurred (Gaussian, radius 8). Each
descriptor (torch, steps.identity.face_net) also comes with dlib's own descriptor of the same chip.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import dlib  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

from steps.frames import read_frames  # noqa: E402
from steps.identity.faces import RECOGNITION_FILE, FaceEmbedder, model_dir  # noqa: E402
from vidflow.media import ffprobe, summarize  # noqa: E402

NAMES = ("franck", "carphone", "single", "wolf")
DLIB_NET = None  # dlib's own run of the descriptor network, to compare with torch's


def sample(embedder, image, bbox, frame):
    s = embedder.measure(image, bbox, frame)
    return {"frame": frame, "bbox": [float(v) for v in bbox], "size": s.size, "sharpness": s.sharpness,
            "frontal": s.frontal, "descriptor": [float(v) for v in s.descriptor],
            "dlib_descriptor": list(DLIB_NET.compute_face_descriptor(s.chip))}


def main(clips, out):
    global DLIB_NET
    DLIB_NET = dlib.face_recognition_model_v1(str(model_dir() / RECOGNITION_FILE))
    embedder, detector = FaceEmbedder(), dlib.get_frontal_face_detector()
    result, degraded = {}, {}
    for name in NAMES:
        path = Path(clips) / f"faces_{name}.mp4"
        video = summarize(ffprobe(path))["video"]
        width, height = video["width"], video["height"]
        rows = []
        for index, image in read_frames(path, width, height):
            if index % 10:
                continue
            found = detector(image, 2 if width < 300 else 1)
            if len(found) == 1:
                r = found[0]
                bbox = [r.left(), r.top(), r.width(), r.height()]
                rows.append(sample(embedder, image, bbox, index))
                if name == "franck" and index == 100:
                    scale = 12 / r.width()
                    small = np.asarray(Image.fromarray(image).resize((round(width * scale), round(height * scale)),
                                                                     Image.BILINEAR))
                    degraded["tiny"] = sample(embedder, small, [v * scale for v in bbox], index)
                    blurred = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(8)))
                    degraded["blurred"] = sample(embedder, blurred, bbox, index)
        result[name] = rows
    Path(out).write_text(json.dumps({"faces": result, "degraded": degraded}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
