from dbfix.cli import main

main()
