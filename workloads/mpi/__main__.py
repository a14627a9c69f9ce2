from workloads.mpi.main import main

raise SystemExit(main())
