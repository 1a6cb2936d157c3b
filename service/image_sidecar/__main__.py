from image_sidecar.cli import main

main()
