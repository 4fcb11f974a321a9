from edgefer.cli import main

main()
