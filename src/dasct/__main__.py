from dasct.cli import main

raise SystemExit(main())
