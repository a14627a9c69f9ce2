from workloads.qnn.main import main

raise SystemExit(main())
