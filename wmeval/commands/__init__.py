"""One module per CLI command, each with `run(cfg)`; composed by `wmeval.cli`."""
