from jwenv.fastrun import main

main()
