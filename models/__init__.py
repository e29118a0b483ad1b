"""Neural networks and pure math of the recurrent neural cascade (imports no other project package)."""
