"""Constructs of the kms-key-generator service: one AWS concern per module, composed by `stacks`."""
