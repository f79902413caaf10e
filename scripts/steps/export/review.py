"""The review video: the 25 fps video at a reviewer's size with the analysis drawn on it, H.264 + the original audio.

One FFmpeg process decodes ``video.mp4`` and scales it to raw yuv420p frames; each frame is drawn on in place (numpy
views of its Y, U and V planes): face boxes green while the face speaks, amber otherwise, labelled with the track
id and its linked speaker; a top line with the time code, the scene number and who speaks; the transcript line at
the bottom when there is one. Text is rendered by Pillow (its bundled font), one glyph at a time, and cached. A
second FFmpeg process encodes the frames with libx264 and copies the audio of ``video.mp4``. Staying in yuv420p
(the video's own format) spares two colour conversions and half the pipe traffic of RGB frames. Every frame of the
video is written once: the review video has the video's frame count (checked).
"""

import logging
import subprocess
import tempfile
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vidflow.errors import UserError
from vidflow.io import atomic_path
from vidflow.media import ffmpeg_reason

log = logging.getLogger("export")

SPEAKING, SILENT, WHITE, BLACK = (40, 220, 70), (255, 176, 0), (255, 255, 255), (0, 0, 0)
BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1",
            "-map_chapters", "-1"]


def yuv(rgb):
    """BT.601 limited-range (Y, U, V) of an RGB colour: what FFmpeg's yuv420p holds for it."""
    r, g, b = (c / 255 for c in rgb)
    return (round(16 + 65.481 * r + 128.553 * g + 24.966 * b), round(128 - 37.797 * r - 74.203 * g + 112.0 * b),
            round(128 + 112.0 * r - 93.786 * g - 18.214 * b))


def review_size(width, height, review_width):
    """Output size: ``review_width`` wide (small videos are scaled up, so the labels stay legible), the video's
    aspect, both even."""
    out_w = review_width // 2 * 2
    return out_w, max(2, round(height * out_w / width / 2) * 2)


def timecode(frame, fps):
    centis = round(frame / fps * 100)
    return f"{centis // 360000:02d}:{centis // 6000 % 60:02d}:{centis // 100 % 60:02d}.{centis % 100:02d}"


class Canvas:
    """A yuv420p frame (a writable buffer) with rectangles and text drawn into its planes."""

    def __init__(self, width, height, font_size):
        self.width, self.height = width, height
        self.buffer = bytearray(width * height * 3 // 2)
        data = np.frombuffer(self.buffer, np.uint8)
        luma, chroma = width * height, width * height // 4
        self.planes = (data[:luma].reshape(height, width),
                       data[luma:luma + chroma].reshape(height // 2, width // 2),
                       data[luma + chroma:].reshape(height // 2, width // 2))
        self.font = ImageFont.load_default(size=font_size)
        ascent, descent = self.font.getmetrics()
        self.line = ascent + descent
        self.glyphs, self.texts = {}, {}

    def fill(self, x0, y0, x1, y1, colour):
        """Fill pixels ``[x0, x1) x [y0, y1)`` (clipped to the frame; chroma at half resolution)."""
        x0, y0 = max(0, int(x0)) & ~1, max(0, int(y0)) & ~1
        x1, y1 = min(self.width, int(x1) + 1) & ~1, min(self.height, int(y1) + 1) & ~1
        if x1 > x0 and y1 > y0:
            for plane, value, k in zip(self.planes, yuv(colour), (1, 2, 2)):
                plane[y0 // k:y1 // k, x0 // k:x1 // k] = value

    def rectangle(self, x0, y0, x1, y1, colour, thick):
        self.fill(x0, y0, x1, y0 + thick, colour)
        self.fill(x0, y1 - thick, x1, y1, colour)
        self.fill(x0, y0, x0 + thick, y1, colour)
        self.fill(x1 - thick, y0, x1, y1, colour)

    def _glyph(self, char):
        if char not in self.glyphs:
            width = max(1, round(self.font.getlength(char)))
            image = Image.new("L", (width, self.line))
            ImageDraw.Draw(image).text((0, 0), char, font=self.font, fill=255)
            self.glyphs[char] = np.asarray(image, np.float32) / 255
        return self.glyphs[char]

    def mask(self, text):
        """Coverage (0..1, line height x width) of ``text``, glyph by glyph (cached)."""
        if text not in self.texts:
            if len(self.texts) > 4096:
                self.texts.clear()
            self.texts[text] = np.hstack([self._glyph(c) for c in text]) if text else np.zeros((self.line, 0))
        return self.texts[text]

    def label(self, x, y, text, colour, anchor="top-left"):
        """``text`` on a black box whose top-left (or bottom-left, or bottom-centre) corner is at ``(x, y)``."""
        alpha = self.mask(text)
        h, w = alpha.shape
        x = x - w // 2 if anchor == "bottom-centre" else x
        y = y - h - 2 if anchor.startswith("bottom") else y
        x0, y0 = max(0, int(x) - 2) & ~1, max(0, int(y)) & ~1
        x1, y1 = min(self.width, x0 + w + 4) & ~1, min(self.height, y0 + h + 2) & ~1
        if x1 <= x0 or y1 <= y0:
            return
        self.fill(x0, y0, x1 - 1, y1 - 1, BLACK)
        cover = np.zeros((y1 - y0, x1 - x0), np.float32)
        ty, tx = min(h, y1 - y0 - 1), min(w, x1 - x0 - 2)
        cover[1:1 + ty, 2:2 + tx] = alpha[:ty, :tx]
        halves = cover.reshape((y1 - y0) // 2, 2, (x1 - x0) // 2, 2).mean(axis=(1, 3))
        for plane, value, background, k, a in zip(self.planes, yuv(colour), yuv(BLACK), (1, 2, 2),
                                                  (cover, halves, halves)):
            plane[y0 // k:y1 // k, x0 // k:x1 // k] = np.rint(background + (value - background) * a)


def wrap(canvas, text, width, lines=2):
    """``text`` broken into at most ``lines`` lines that fit ``width`` pixels (the rest cut, with '...')."""
    out, words = [], text.split()
    while words and len(out) < lines:
        line = words.pop(0)
        while words and canvas.mask(f"{line} {words[0]}").shape[1] <= width:
            line = f"{line} {words.pop(0)}"
        out.append(line)
    if words:
        out[-1] += " ..."
    return out


def draw_frame(canvas, frame, boxes, timeline, links, scale, fps):
    """Draw one frame's annotations on ``canvas`` (its buffer holds the frame)."""
    thick = max(2, round(canvas.width / 320))
    for track, x, y, w, h, speaking, speaker in boxes:
        colour = SPEAKING if speaking else SILENT
        x0, y0, x1, y1 = x * scale, y * scale, (x + w) * scale, (y + h) * scale
        canvas.rectangle(x0, y0, x1, y1, colour, thick + (1 if speaking else 0))
        name = speaker or links.get(track)
        text = f"#{track} {name}" if name else f"#{track}"
        top_line = canvas.line + 4  # the time code line's bottom
        if y0 - canvas.line - 4 >= top_line:  # above the box
            canvas.label(x0, y0, text, colour, "bottom-left")
        else:  # inside the box, below its top edge and below the time code line
            canvas.label(x0 + thick, max(y0 + thick + 1, top_line + 1), text, colour)
    talking = ", ".join(timeline.speakers[frame]) or "-"
    scene = f"scene {timeline.scene[frame]}" if timeline.scene[frame] else "no scene"
    canvas.label(4, 2, f"{timecode(frame, fps)}  {scene}  speaking: {talking}", WHITE)
    if timeline.subtitle[frame]:
        lines = wrap(canvas, timeline.subtitle[frame], canvas.width - 16)
        for n, line in enumerate(lines):
            bottom = canvas.height - 4 - (len(lines) - 1 - n) * (canvas.line + 2)
            canvas.label(canvas.width // 2, bottom, line, WHITE, "bottom-centre")


def _read_into(stream, buffer):
    """Fill ``buffer`` from ``stream``; False at the end of the stream."""
    view, done = memoryview(buffer), 0
    while done < len(buffer):
        got = stream.readinto(view[done:])
        if not got:
            return False
        done += got
    return True


def render_review(video, path, faces, timeline, links, width, crf, preset, threads=1):
    """Write the review video of ``video`` to ``path``; returns ``(frames, seconds)``."""
    out_w, out_h = review_size(faces.width, faces.height, width)
    canvas = Canvas(out_w, out_h, max(10, round(out_w / 40)))
    scale = out_w / faces.width
    # every decoded frame once, as the tracking step reads them (no frame duplicated or dropped for timing). x264 on one
    # thread whatever the job has: its output depends on its thread count, and the review video must not depend on the
    # machine (the encode is ~1.5 s of a minute of video; drawing takes the rest)
    decode = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-threads", str(threads), "-i", str(video),
              "-map", "0:v:0", "-vf", f"scale={out_w}:{out_h}:flags=bilinear", "-fps_mode", "passthrough",
              "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"]
    started, frames = time.monotonic(), 0
    with atomic_path(path) as tmp, tempfile.TemporaryFile() as dec_err, tempfile.TemporaryFile() as enc_err:
        encode = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p",
                  "-s", f"{out_w}x{out_h}", "-r", str(int(faces.fps)), "-i", "pipe:0", "-i", str(video),
                  "-map", "0:v:0", "-map", "1:a:0?", "-c:v", "libx264", "-preset", preset, "-crf", str(crf),
                  "-pix_fmt", "yuv420p", "-threads", "1", "-c:a", "copy", *BITEXACT,
                  "-movflags", "+faststart", str(tmp)]
        log.info("review video %dx%d: %s | draw | %s", out_w, out_h, " ".join(decode), " ".join(encode))
        decoder = subprocess.Popen(decode, stdout=subprocess.PIPE, stderr=dec_err)
        encoder = subprocess.Popen(encode, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=enc_err)
        try:
            while _read_into(decoder.stdout, canvas.buffer):
                if frames < faces.frame_count:
                    draw_frame(canvas, frames, faces.boxes[frames], timeline, links, scale, faces.fps)
                encoder.stdin.write(canvas.buffer)
                frames += 1
        except BrokenPipeError:
            pass  # the encoder failed: its error output says why (below)
        finally:
            decoder.stdout.close()
            try:
                encoder.stdin.close()
            except BrokenPipeError:
                pass
            decoded, encoded = decoder.wait(), encoder.wait()
        for code, errors, what in ((decoded, dec_err, "decoding"), (encoded, enc_err, "encoding the review video")):
            if code != 0:
                errors.seek(0)
                reason = ffmpeg_reason(errors.read().decode("utf-8", "replace")) or f"exit {code}"
                raise UserError(video if what == "decoding" else path, f"ffmpeg failed {what}: {reason}")
        if frames != faces.frame_count:
            raise UserError(video, f"has {frames} frames, but faces.json has {faces.frame_count}")
    return frames, time.monotonic() - started
