"""Step 2, convert: a video to constant 25 fps H.264 + AAC.

- :mod:`.pipeline`: the plan (remux or re-encode), the encoder (NVENC or x264) and the FFmpeg run; its ``run`` is
  the job.
- :mod:`.source`: what FFmpeg's decoders see in a source (stream starts, decode errors, damage).
"""
