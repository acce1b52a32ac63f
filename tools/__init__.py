"""Developer tooling: Terraform through the offline provider mirror, local AWS, benchmarks, clients."""
