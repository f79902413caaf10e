"""Video frames as numpy arrays, for the steps that look at pixels (their envs have numpy)."""

import numpy as np

from vidflow.media import FPS, read_frame_bytes


def read_frames(path, width, height, start=0, count=None, fps=FPS, threads=1):
    """Yield ``(index, frame)``: read-only ``height x width x 3`` uint8 RGB arrays (vidflow.media.read_frame_bytes)."""
    for index, data in read_frame_bytes(path, width, height, start, count, fps, threads):
        yield index, np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)


def read_small_frames(path, width, height, batch, threads=1):
    """Yield uint8 arrays ``[k, height, width, 3]`` (k <= batch) of every frame of ``path``, scaled by FFmpeg."""
    for _, data in read_frame_bytes(path, width, height, threads=threads, scale=True, batch=batch):
        yield np.frombuffer(data, dtype=np.uint8).reshape(-1, height, width, 3)
