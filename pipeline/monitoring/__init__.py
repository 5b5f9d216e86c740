"""Served forecasts scored against the actuals that arrive, and drift as stated rules."""
