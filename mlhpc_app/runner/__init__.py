"""Run a workload on this machine: in-process for one worker, Ray actors for several."""
