from actionrelay.cli import main

main()
