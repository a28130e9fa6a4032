from nemo_server.cli import main

main()
