"""Optional step expressions: py-feat action units and emotions of every tracked face -> ``expressions.json``.

- :mod:`.pipeline`: the step (model files, crops, batches, the document); its ``run`` is the job.
- :mod:`.model`: py-feat's landmark, AU and emotion models, loaded offline (the expressions env only).
"""
