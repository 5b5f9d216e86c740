"""The orchestrator actor and the pure pieces it delegates to (state machine, queue)."""
