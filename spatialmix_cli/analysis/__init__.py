"""The analysis layer: filter spectra, un-shuffling scores and grids, the paper's report
(docs/architecture.md)."""
