from tablemake.cli import main

raise SystemExit(main())
