"""Step 5, tracking: every face in every frame with a stable id -> ``tracking.json``.

- :mod:`.pipeline`: chunks, workers, the streamed output; its ``run`` is the job.
- :mod:`.engines`: the face engines (MediaPipe, YuNet, OpenSeeFace, eos); public: ``ENGINES``, ``tracking_env``,
  ``tracking_gpus`` (the rules pick a tracking env with them).
- :mod:`.tracks`: stable track ids across frames (public: ``iou``).
- :mod:`.output`: scenes in, rounded faces out.
"""
