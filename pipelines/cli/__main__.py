"""`python -m pipelines.cli COMMAND ...` is `cxrsearch COMMAND ...` (for programs that run the CLI with a given
interpreter, such as the web app's reindex jobs)."""
import sys

from pipelines.cli import main

sys.exit(main())
