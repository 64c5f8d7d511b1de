"""Running the pipeline on this machine: the CLI, and (as it grows) the local runtime on moto."""
