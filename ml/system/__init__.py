"""The machine: devices, resources, files."""
