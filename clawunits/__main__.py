from clawunits.cli.main import main

main()
