"""Data in, label mining, training runs, batch jobs and the `cxrsearch` CLI."""
