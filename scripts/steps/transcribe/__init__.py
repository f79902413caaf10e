"""Step transcribe: who said what, word by word -> ``transcript.json``, ``.vtt``, ``.srt``.

- :mod:`.pipeline`: audio, speech stretches, the documents and subtitles; its ``run`` is the job.
- :mod:`.whisper`: speech recognition (faster-whisper).
- :mod:`.weights`: the Whisper model folder (packaged weights, checked and assembled once, or a user's folder).
- :mod:`.transcript`: words linked to speakers and face tracks, segments, cues (standard library only).
"""
