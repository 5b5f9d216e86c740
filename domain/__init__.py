"""Vocabulary shared by every layer: job enums and the service's error tree."""
