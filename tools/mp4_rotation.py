"""Display rotation of an MP4 (its video track's tkhd matrix), as phones write it (tools/media_clips.py)."""

from __future__ import annotations

from pathlib import Path

_CONTAINER_BOXES = {b"moov", b"trak", b"mdia"}


def _boxes(data: bytes, start: int, end: int):
    """Yield (type, start, payload_start, end) of the ISO-BMFF boxes in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        header = 8
        if size == 1:
            size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = end - pos
        if size < header:
            raise ValueError("corrupt mp4 box")
        yield kind, pos, pos + header, pos + size
        pos += size


def _video_tkhd_offset(data: bytes) -> int:
    """Offset of the tkhd payload of the first video track."""
    for kind, _, moov, moov_end in _boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        for tkind, _, trak, trak_end in _boxes(data, moov, moov_end):
            if tkind != b"trak":
                continue
            tkhd = handler = None
            for bkind, _, payload, bend in _boxes(data, trak, trak_end):
                if bkind == b"tkhd":
                    tkhd = payload
                elif bkind == b"mdia":
                    for mkind, _, mpayload, _ in _boxes(data, payload, bend):
                        if mkind == b"hdlr":
                            handler = data[mpayload + 8 : mpayload + 12]
            if handler == b"vide" and tkhd is not None:
                return tkhd
    raise ValueError("no video track in mp4")


def set_mp4_rotation(path, degrees: int) -> None:
    """Write a display matrix asking players to rotate the video clockwise by ``degrees``.

    Equivalent to the old ``-metadata:s:v:0 rotate=N`` (ignored by ffmpeg 5.1's
    muxer, and ``-display_rotation`` only exists from ffmpeg 6): ffprobe then
    reports ``side_data_list[].rotation == -degrees`` (counter-clockwise
    convention) and players show the rotated picture.  Patches the tkhd box.
    """
    data = bytearray(Path(path).read_bytes())
    tkhd = _video_tkhd_offset(bytes(data))
    version = data[tkhd]
    matrix_at = tkhd + 4 + (32 if version == 1 else 20) + 16
    width = int.from_bytes(data[matrix_at + 36 : matrix_at + 40], "big") >> 16
    height = int.from_bytes(data[matrix_at + 40 : matrix_at + 44], "big") >> 16
    a, b, c, d, tx, ty = {0: (1, 0, 0, 1, 0, 0), 90: (0, 1, -1, 0, height, 0),
                          180: (-1, 0, 0, -1, width, height), 270: (0, -1, 1, 0, 0, width)}[degrees % 360]
    values = [a << 16, b << 16, 0, c << 16, d << 16, 0, tx << 16, ty << 16, 1 << 30]
    data[matrix_at : matrix_at + 36] = b"".join((v & 0xFFFFFFFF).to_bytes(4, "big") for v in values)
    Path(path).write_bytes(bytes(data))
