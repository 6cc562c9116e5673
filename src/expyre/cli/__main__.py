"""``python -m expyre.cli`` runs ``xpr``."""

from expyre.cli import main

main()
