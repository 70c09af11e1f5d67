"""FLOPs, latency, tables and plots."""
