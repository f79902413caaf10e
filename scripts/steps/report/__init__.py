"""Step report: the review report's pages and figures, per video and for the run.

- :mod:`.video`: per video (figures, speakers, tracks, transcript, exports and persons pages); its ``run`` and
  ``run_transcript``, ``run_exports``, ``run_persons`` are the jobs ``report_video``, ``report_*``.
- :mod:`.run_summary`: the run's pages (status of every video, benchmarks); its ``run`` is the job.
- :mod:`.data`: tables and figure inputs as plain data (standard library only).
- :mod:`.pages`: the HTML pages from jinja2 templates (public: ``tables_page``, ``run_page``, for diagnostics
  and the end of a run).
- :mod:`.plots`: the figures (matplotlib).
- :mod:`.persons`, :mod:`.transcript`: what the report shows of identity and of a transcript.
"""
