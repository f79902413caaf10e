"""The review video: the 25 fps video at a reviewer's size with the analysis drawn on it, H.264 + the original audio.

One FFmpeg process decodes and scales ``video.mp4`` to RGB frames, Pillow draws on each frame (face boxes green while
the face speaks, amber otherwise, with the track id and its linked speaker; a top line with the time code, the scene
number and who speaks; the transcript line at the bottom when there is one), and a second FFmpeg process encodes the
frames with libx264 and copies the audio of ``video.mp4``. Every frame of the video is written once: the review
video has the video's frame count (checked).
"""

import logging
import subprocess
import tempfile
import time

from PIL import Image, ImageDraw, ImageFont

from vidflow.errors import UserError
from vidflow.io import atomic_path
from vidflow.media import ffmpeg_reason

log = logging.getLogger("export")

SPEAKING, SILENT = (40, 220, 70), (255, 176, 0)
BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1",
            "-map_chapters", "-1"]


def review_size(width, height, review_width):
    """Output size: ``review_width`` wide (small videos are scaled up, so the labels stay legible), the video's
    aspect, both even."""
    out_w = review_width // 2 * 2
    return out_w, max(2, round(height * out_w / width / 2) * 2)


def timecode(frame, fps):
    centis = round(frame / fps * 100)
    return f"{centis // 360000:02d}:{centis // 6000 % 60:02d}:{centis // 100 % 60:02d}.{centis % 100:02d}"


def _label(draw, xy, text, font, fill, anchor="la"):
    """Text on a filled dark box (readable on any picture)."""
    left, top, right, bottom = draw.textbbox(xy, text, font=font, anchor=anchor)
    draw.rectangle((left - 2, top - 1, right + 2, bottom + 1), fill=(0, 0, 0))
    draw.text(xy, text, font=font, fill=fill, anchor=anchor)


def draw_frame(image, frame, boxes, timeline, links, scale, fps, font):
    """Draw one frame's annotations on ``image`` (a PIL RGB image of the review size)."""
    draw = ImageDraw.Draw(image)
    thick = max(2, round(image.width / 320))
    for track, x, y, w, h, speaking, speaker in boxes:
        colour = SPEAKING if speaking else SILENT
        box = (x * scale, y * scale, (x + w) * scale, (y + h) * scale)
        draw.rectangle(box, outline=colour, width=thick + (1 if speaking else 0))
        name = speaker or links.get(track)
        _label(draw, (box[0], max(0, box[1] - 1)), f"#{track} {name}" if name else f"#{track}", font, colour, "lb")
    talking = ", ".join(timeline.speakers[frame]) or "-"
    scene = f"scene {timeline.scene[frame]}" if timeline.scene[frame] else "no scene"
    _label(draw, (4, 3), f"{timecode(frame, fps)}  {scene}  speaking: {talking}", font, (255, 255, 255))
    if timeline.subtitle[frame]:
        _label(draw, (image.width // 2, image.height - 4), timeline.subtitle[frame], font, (255, 255, 255), "md")


def render_review(video, path, faces, timeline, links, width, crf, preset, threads=1):
    """Write the review video of ``video`` to ``path``; returns ``(frames, seconds)``."""
    out_w, out_h = review_size(faces.width, faces.height, width)
    scale, frame_bytes = out_w / faces.width, out_w * out_h * 3
    font = ImageFont.load_default(size=max(10, round(out_w / 40)))
    decode = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-threads", str(threads), "-i", str(video),
              "-map", "0:v:0", "-vf", f"scale={out_w}:{out_h}:flags=bilinear", "-f", "rawvideo", "-pix_fmt", "rgb24",
              "pipe:1"]
    started, frames = time.monotonic(), 0
    with atomic_path(path) as tmp, tempfile.TemporaryFile() as dec_err, tempfile.TemporaryFile() as enc_err:
        encode = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                  "-s", f"{out_w}x{out_h}", "-r", str(int(faces.fps)), "-i", "pipe:0", "-i", str(video),
                  "-map", "0:v:0", "-map", "1:a:0?", "-c:v", "libx264", "-preset", preset, "-crf", str(crf),
                  "-pix_fmt", "yuv420p", "-threads", str(threads), "-c:a", "copy", *BITEXACT,
                  "-movflags", "+faststart", str(tmp)]
        log.info("review video %dx%d: %s | draw | %s", out_w, out_h, " ".join(decode), " ".join(encode))
        decoder = subprocess.Popen(decode, stdout=subprocess.PIPE, stderr=dec_err)
        encoder = subprocess.Popen(encode, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=enc_err)
        try:
            while True:
                data = decoder.stdout.read(frame_bytes)
                if len(data) < frame_bytes:
                    break
                image = Image.frombytes("RGB", (out_w, out_h), data)
                if frames < faces.frame_count:
                    draw_frame(image, frames, faces.boxes[frames], timeline, links, scale, faces.fps, font)
                encoder.stdin.write(image.tobytes())
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
