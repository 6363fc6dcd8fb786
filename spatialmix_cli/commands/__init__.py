"""The commands layer: one module per command, each returning data for the CLI to print
(docs/architecture.md)."""
