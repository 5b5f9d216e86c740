"""The hyperparameter search: Optuna studies, the trials, and their pruning."""
