"""Examples for ``conveyor dev``: workflows (``workflows/``), the python functions they call
(:mod:`examples.functions`) and a small HTTP service they talk to (:mod:`examples.service`)."""
