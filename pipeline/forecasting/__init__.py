"""Forecasts from registered models: rows in, forecasts out (``predict``), batch forecasts
over stored series, their output files, and the MLflow pyfunc flavour."""
