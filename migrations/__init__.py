"""The numbered SQL migrations, shipped inside the package as image_sidecar.migrations."""
