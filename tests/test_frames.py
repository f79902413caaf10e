"""Frame readers (steps.frames): the chosen frames of a video are the same pixels a full read gives at those indices."""

import subprocess

import numpy as np
import pytest

from steps import frames
from steps.frames import read_chosen_frames, read_frames
from vidflow.media import select_expression


@pytest.fixture(scope="module")
def moving_clip(tmp_path_factory):
    """12 s at 25 fps, 64x48, a picture that changes every frame, a key frame every 50 frames (seeks land between)."""
    path = tmp_path_factory.mktemp("frames") / "moving.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=12",
                    "-c:v", "libx264", "-g", "50", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def test_select_expression_is_a_balanced_tree_of_the_chosen_frames():
    assert select_expression([7]) == "eq(n,7)"
    assert select_expression([2, 5, 9]) == "if(lt(n,5),eq(n,2),if(lt(n,9),eq(n,5),eq(n,9)))"
    expression, depth, deepest = select_expression(list(range(1000))), 0, 0
    for char in expression:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
    assert expression.count("eq(n,") == 1000 and deepest <= 12  # ~10 ifs deep, not a chain of 1000


@pytest.mark.parametrize("group", [500, 3])
def test_chosen_frames_equal_the_full_read_at_their_indices(moving_clip, monkeypatch, group):
    monkeypatch.setattr(frames, "SELECT_GROUP", group)  # 3: several FFmpeg runs, each seeking to its first frame
    every = dict(read_frames(moving_clip, 64, 48))
    assert len(every) == 300 and not np.array_equal(every[120], every[121])
    chosen = [299, 0, 1, 49, 50, 51, 120, 121, 200, 121]
    got = list(read_chosen_frames(moving_clip, 64, 48, chosen, threads=2))
    assert [index for index, _ in got] == sorted(set(chosen))
    for index, image in got:
        assert np.array_equal(image, every[index]), index
