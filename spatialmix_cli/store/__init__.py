"""The store layer: files a run leaves on disk and reads back (safe writes, checkpoints, run folders, locks,
targets). Builds models from stored metadata; knows nothing of training (docs/architecture.md)."""
