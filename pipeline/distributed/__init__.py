"""Data-parallel training on Ray Train, for a ``distributed`` job: the fitter that trains
a model's boosters across Ray Train workers (``ray_train``), what each worker runs
(``worker``) and the Ray Datasets of the training rows they share out (``datasets``).

A room of its own above ``pipeline.training``: it fits with that room's ``fitting`` and
assembles models as its ``train`` does, and nothing there depends on Ray Train.
"""
