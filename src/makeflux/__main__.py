from makeflux.console import main

main()
