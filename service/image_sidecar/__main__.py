"""`python -m image_sidecar` and the `image-sidecar` command.

The command's script imports only this module, and this module imports the CLI (the whole
service) only when it runs: each picture process re-runs the command's script as it starts
(multiprocessing's main-module fix-up), and should hold Pillow and numpy, not aiohttp, the
database driver and botocore (15 MB a process, measured in the container).
"""


def main() -> None:
    from image_sidecar.cli import main as run

    run()


if __name__ == "__main__":
    main()
