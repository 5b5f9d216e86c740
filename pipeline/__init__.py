"""The training pipeline: plain, typed stage functions and the Ray task graph that runs them."""
