"""Stream RGB frames out of a video with an ffmpeg rawvideo pipe (memory flat with video length)."""

import subprocess
import tempfile

import numpy as np

from vidflow.errors import UserError


def read_frames(path, width, height, start=0, count=None, fps=25, threads=1):
    """Yield ``(index, frame)`` for ``count`` frames from 0-based ``start`` (all to the end if None).

    ``frame`` is a read-only ``height x width x 3`` uint8 RGB array. Seeking is frame-accurate
    (ffmpeg input seeking decodes from the previous key frame and drops frames before ``start``)
    on the constant-frame-rate videos step 2 writes.
    """
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-threads", str(threads)]
    if start:
        cmd += ["-ss", f"{start / fps:.6f}"]
    cmd += ["-i", str(path), "-map", "0:v:0", "-an", "-sn", "-dn"]
    if count is not None:
        cmd += ["-frames:v", str(count)]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-vsync", "passthrough", "pipe:1"]
    size = width * height * 3
    index, killed = start, False
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, bufsize=size)
        try:
            while count is None or index - start < count:
                data = proc.stdout.read(size)
                if len(data) < size:
                    break
                yield index, np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
                index += 1
        finally:  # also when the consumer stops early
            if proc.poll() is None and count is not None and index - start < count:
                proc.kill()
                killed = True
            proc.stdout.close()
            code = proc.wait()
        if code != 0 and not killed:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip().splitlines()
            raise UserError(path, f"ffmpeg could not decode frames from {start}: {message[-1] if message else code}")
