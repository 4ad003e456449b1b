from actionrelay.cli.main import main

main()
