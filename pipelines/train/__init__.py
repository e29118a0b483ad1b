"""Training and inference runs of the recurrent neural cascade (uses `models`, reads the manifest)."""
