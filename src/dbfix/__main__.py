from dbfix.replay import main

main()
