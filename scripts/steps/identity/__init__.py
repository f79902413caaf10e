"""Step identity: a face embedding per track and a voice embedding per speaker, then persons per project.

- :mod:`.pipeline`: per video -> ``identity.json``; its ``run`` is the job.
- :mod:`.persons`: per project -> ``persons.json``; its ``run`` is the job ``identity_persons``.
- :mod:`.faces`, :mod:`.voices`: the two embedders (dlib, CAM++).
- :mod:`.cluster`: persons from embeddings (calibrated thresholds, cannot-link pairs).
- :mod:`.gallery`: named references (a folder of photos and voice clips per person).
"""
