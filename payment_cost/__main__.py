import sys

from payment_cost.cli import main

sys.exit(main())
