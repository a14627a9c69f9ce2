"""AWS adapters of the CLI: sessions with retries, stack outputs, Batch, SageMaker, EKS, logs, S3 results."""
