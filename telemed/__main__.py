from telemed.cli import main

main()
