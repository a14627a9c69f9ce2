"""What every workload shares: option parsing from its spec, rendezvous, checkpoints, storage, SageMaker."""
