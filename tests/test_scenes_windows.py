"""Step 3's windows: the video streamed into TransNetV2's 100-frame windows exactly as upstream pads and cuts it,
each frame's prediction taken from the middle of its window, windows stacked into batches (numpy only)."""

import numpy as np
import pytest

from steps.scenes import pipeline as sc


def indexed_frames(n):
    """Frames whose pixels encode their own index (so windows can be checked frame by frame)."""
    frames = np.zeros((n, 27, 48, 3), np.uint8)
    frames[:, :, :, 0] = (np.arange(n) // 256)[:, None, None]
    frames[:, :, :, 1] = (np.arange(n) % 256)[:, None, None]
    return frames


def frame_index(frames):
    return frames[..., 0, 0, 0].astype(int) * 256 + frames[..., 0, 0, 1]


def chunked(frames, size):
    return [frames[i:i + size] for i in range(0, len(frames), size)]


def upstream_windows(n):
    """Frame indices of each window, from upstream's rule: 25 x first frame, the video, last frame
    until the length is 25 + a multiple of 50 + 25 (at least 75 after the video's last 50-frame block)."""
    pad_end = 25 + 50 - (n % 50 if n % 50 else 50)
    padded = [0] * 25 + list(range(n)) + [n - 1] * pad_end
    return [padded[p:p + 100] for p in range(0, len(padded) - 100 + 1, 50)]


@pytest.mark.parametrize("n", [1, 2, 49, 50, 51, 99, 100, 101, 149, 173, 260])
@pytest.mark.parametrize("chunk", [1, 7, 50, 250])
def test_streamed_windows_equal_upstream_padding(n, chunk):
    windows = list(sc.iter_windows(chunked(indexed_frames(n), chunk)))
    assert [frame_index(w).tolist() for w in windows] == upstream_windows(n)
    assert len(windows) == sc.window_count(n) == -(-n // 50)
    assert all(w.shape == (100, 27, 48, 3) and w.dtype == np.uint8 for w in windows)


def test_no_frames_give_no_windows():
    assert list(sc.iter_windows([])) == []


@pytest.mark.parametrize("n", [1, 60, 150, 201])
@pytest.mark.parametrize("batch", [1, 3])
def test_kept_predictions_line_up_with_frames(monkeypatch, n, batch):
    """Each frame gets the prediction made for it in the middle of its window, whatever the batching."""
    frames = indexed_frames(n)
    monkeypatch.setattr(sc, "decode_small_frames", lambda path, threads: iter(chunked(frames, 37)))
    sizes, released = [], []
    monkeypatch.setattr(sc, "release_free_memory", lambda: released.append(len(sizes)))

    def model(windows):  # "probability" = the frame's own index, read back from the pixels
        sizes.append(len(windows))
        return frame_index(windows).astype(np.float32)

    timings = {}
    probs = sc.predict_video("clip.mp4", model, batch_size=batch, timings=timings)
    assert probs.tolist() == list(range(n))
    assert max(sizes) <= batch and sum(sizes) == -(-n // 50)
    assert released == list(range(1, len(sizes) + 1))  # after every batch: memory stays flat (see the function)
    assert set(timings) == {"decode", "inference"}


def test_batches_stack_consecutive_windows():
    windows = [np.full((100, 27, 48, 3), i, np.uint8) for i in range(5)]
    batches = list(sc.iter_batches(iter(windows), 2))
    assert [b.shape[0] for b in batches] == [2, 2, 1]
    assert [int(b[j, 0, 0, 0, 0]) for b in batches for j in range(len(b))] == [0, 1, 2, 3, 4]
