from segctl.sample import main

raise SystemExit(main())
