from resumer.cli import main

main()
