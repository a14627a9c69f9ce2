from workloads.bert.main import main

raise SystemExit(main())
