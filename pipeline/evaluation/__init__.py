"""How a trained model is judged: the evaluate stage on the test part (and the anomaly
threshold), and backtests over rolling windows."""
