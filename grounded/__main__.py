import sys

from grounded.cli.main import main

sys.exit(main())
