"""Run a job on this machine as AWS Batch, SageMaker or EKS would run it (issue 18)."""
