"""A trained model as the service keeps it: the artifact directory and its registration."""
