"""Video frames as numpy arrays, for the steps that look at pixels (their envs have numpy)."""

import numpy as np

from vidflow.media import FPS, read_frame_bytes


def read_frames(path, width, height, start=0, count=None, fps=FPS, threads=1):
    """Yield ``(index, frame)``: read-only ``height x width x 3`` uint8 RGB arrays (vidflow.media.read_frame_bytes)."""
    for index, data in read_frame_bytes(path, width, height, start, count, fps, threads):
        yield index, np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)


SELECT_GROUP = 500  # chosen frames per FFmpeg run: its select expression (~26 bytes a frame) stays a short argument


def read_chosen_frames(path, width, height, indices, threads=1):
    """Yield ``(index, frame)`` as :func:`read_frames` does, for the frames ``indices`` only (any order; read in frame
    order, each once). FFmpeg still decodes the frames between them (from the previous key frame when it seeks to a
    group's first frame), but converts and pipes only the chosen ones, which is most of a full read's cost."""
    chosen = sorted(set(indices))
    for first in range(0, len(chosen), SELECT_GROUP):
        group = chosen[first:first + SELECT_GROUP]
        offsets = [index - group[0] for index in group]
        for position, data in read_frame_bytes(path, width, height, group[0], threads=threads, select=offsets):
            yield group[position - group[0]], np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)


def read_small_frames(path, width, height, batch, threads=1):
    """Yield uint8 arrays ``[k, height, width, 3]`` (k <= batch) of every frame of ``path``, scaled by FFmpeg."""
    for _, data in read_frame_bytes(path, width, height, threads=threads, scale=True, batch=batch):
        yield np.frombuffer(data, dtype=np.uint8).reshape(-1, height, width, 3)
