from clonedesk.cli import main

main()
