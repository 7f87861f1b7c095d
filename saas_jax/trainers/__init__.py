"""One module per stage; each exposes train_and_evaluate(config, workdir)."""
