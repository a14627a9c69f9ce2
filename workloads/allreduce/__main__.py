from workloads.allreduce.main import main

raise SystemExit(main())
