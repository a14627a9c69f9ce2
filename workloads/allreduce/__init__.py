"""Collective benchmark (nccl-tests conventions) and the data-parallel training-scaling study."""
