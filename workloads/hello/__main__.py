from workloads.hello.main import main

raise SystemExit(main())
