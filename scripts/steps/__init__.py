"""The workflow's steps: a package per step with several parts (its entry: ``pipeline``), a module per step with one.

``scripts/run_step.py STEP`` runs a step's job (``run`` of its entry module). A step's modules import each other
and :mod:`vidflow`; another step's only through the names its package's docstring calls public.
"""
