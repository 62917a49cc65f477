from ignite.cli import main

raise SystemExit(main())
