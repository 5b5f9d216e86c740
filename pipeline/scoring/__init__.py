"""How forecasts are scored: point and per-series errors, quantiles and their calibration.

The room every other one may use; it imports none of them."""
