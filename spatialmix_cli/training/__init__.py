"""The train layer: the trainer (loop, state, tasks, evaluation, hooks, runtime, DDP, memory estimates)
(docs/architecture.md)."""
