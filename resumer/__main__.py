from resumer.cli.app import main

main()
