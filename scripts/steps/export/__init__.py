"""Step export: a video's results as ELAN, Praat, WebVTT, tables and a review video.

- :mod:`.pipeline`: the step (settings, every file of the export folder); its ``run`` is the job.
- :mod:`.data`: what the files say, as plain data (streamed faces, tiers, cues, rows).
- :mod:`.formats`: the files, written by each format's library (pympi-ling, praatio, webvtt-py, pyarrow).
- :mod:`.review`: the review video.
- :mod:`.check`: every export file is what its format requires (public: ``check_exports``, for ``finalize``).

The list of a video's export files is shared with the report: :mod:`vidflow.exports`.
"""
