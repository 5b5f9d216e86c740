"""LightGBM boosters and the models made of them: one fit-and-refit (``fitting``) used in
this process, per series and, by ``pipeline.distributed``, data-parallel on Ray Train
workers; the blend of members; the quantiles calibrated at rolling origins; LightGBM
callbacks."""
