"""The on-disk formats: the project file and run folders."""
