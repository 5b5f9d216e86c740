"""The rows a job learns from: the load stage, the features built from a series
(calendars, lags, rolling windows), the time-ordered split and scaler (``preprocess``), and
the partitions of a set built in parallel for data-parallel training."""
