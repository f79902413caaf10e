"""Step 3, scenes: shot boundaries with TransNetV2 -> ``scenes.json``, ``scenes.csv``, ``scenes_probs.json``.

- :mod:`.pipeline`: decoding, windows, predictions to scenes, the documents; its ``run`` is the job (numpy only).
- :mod:`.runtime`: which runtime runs the network (OpenVINO without torch on the CPU; PyTorch on CUDA).
- :mod:`.model`: the network in PyTorch and its ONNX export (imported only where torch runs).
"""
