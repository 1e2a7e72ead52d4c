"""``python -m appliance`` is the ``chalkbox`` command."""
from .cli import main

main()
