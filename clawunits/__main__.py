from clawunits.cli import main

main()
