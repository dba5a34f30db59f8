"""`python -m server.cli`: the same commands as `e-rescue`."""

from server.cli import main

main()
