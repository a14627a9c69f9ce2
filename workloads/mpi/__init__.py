"""mpi: your own MPI program across the job's nodes, started with mpirun (the seeds' ChainerMN path)."""
