from nemo_server.cli import main

# The guard matters: multiprocessing's "spawn" re-imports __main__ in its children.
if __name__ == "__main__":
    main()
