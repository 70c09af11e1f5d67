import sys

from edgevc.cli.main import main

sys.exit(main())
