"""The pipelines the CLI and the workers call: train, cross-validate, search."""
