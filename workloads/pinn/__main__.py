from workloads.pinn.main import main

raise SystemExit(main())
