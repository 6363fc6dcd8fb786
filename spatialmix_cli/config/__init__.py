"""The config layer: every key with its type, bounds, help and choices, the registries' names, recipes and
the attack plan. No torch: the CLI's help and completion read this layer alone (docs/architecture.md)."""
