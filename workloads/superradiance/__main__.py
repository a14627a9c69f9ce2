from workloads.superradiance.main import main

raise SystemExit(main())
