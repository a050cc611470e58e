"""``python -m attnkit``: the ``attnkit`` command. Ctrl-C is handled before anything else is imported."""

import sys

from attnkit.errors import exit_on_interrupt

exit_on_interrupt(True)

from attnkit.cli.main import main  # noqa: E402

sys.exit(main())
