"""The pipeline as a Ray task graph: the only package that applies ``ray.remote``.

Each stage runs as a task named ``<stage>:<job_id>`` and returns two objects: its output,
which the next stage receives by ObjectRef (data stays in the object store), and a small
``StageReport`` (log lines, a summary, timing) that the orchestrator reads and persists.
``launch`` chains a job's stages in the job's reservation (``pipeline.placement``); the
coordinators (``search``, ``backtest``, ``per_series``, ``partitioned``, ``forecast``)
fan a stage out as one-CPU tasks, one per reserved CPU at a time (``fanout``). ``runner``
calls the same stages in one process, without Ray.
"""
