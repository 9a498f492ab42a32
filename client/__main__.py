"""`python -m client ...` is the same as `dcgan-faces ...`."""
from client.cli import main

raise SystemExit(main())
