from makeflux.cli import main

main()
