"""The HTTP face of the service: a FastAPI app served by Ray Serve, and the ``trainctl`` CLI."""
