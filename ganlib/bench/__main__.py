from .cli import main

main()  # the return value is for tests; the command prints what it found
