from devstack.tiny import main

main()
