"""Data: built-in datasets, CSV and NPZ files, deterministic splits, prediction inputs."""
