from jwenv.cli import main

main()
