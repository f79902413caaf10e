"""vidflow.devices: the one choice of CPU or CUDA that scenes, diarization (pyannote) and expressions make."""

from types import SimpleNamespace

from vidflow.devices import choose_device, cuda_status


def fake_torch(available, name="NVIDIA H100"):
    cuda = SimpleNamespace(is_available=lambda: available, get_device_name=lambda index: name)
    return SimpleNamespace(__version__="2.13.0", cuda=cuda)


def test_cuda_only_with_a_gpu_given_and_visible():
    def probe():
        raise AssertionError("no probe without a GPU given")

    assert choose_device(0, "scenes.gpu", probe) == ("cpu", "the rule was given no GPU (scenes.gpu is 0)")
    assert choose_device(1, "scenes.gpu", lambda: (False, "none"))[0] == "cpu"
    assert choose_device(1, "scenes.gpu", lambda: (True, "H100"))[0] == "cuda"
    assert choose_device(1, "expressions.gpu", lambda: (False, "none")) == ("cpu", "no GPU visible (none)")
    assert choose_device(2, "diarization.gpu", lambda: (True, "H100")) == ("cuda", "GPU visible (H100)")


def test_cuda_status_honours_cuda_visible_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert cuda_status(fake_torch(True)) == (True, "NVIDIA H100")
    assert cuda_status(fake_torch(False)) == (False, "torch 2.13.0 sees no CUDA device")
    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert cuda_status(fake_torch(True)) == (False, "CUDA_VISIBLE_DEVICES hides all GPUs")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    chosen = choose_device(1, "scenes.gpu", lambda: cuda_status(fake_torch(True)))
    assert chosen == ("cuda", "GPU visible (NVIDIA H100)")
