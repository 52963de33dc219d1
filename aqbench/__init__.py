"""aqbench: a Snakemake benchmark suite for compressing BERT (FP, Q-BERT, LQ/ACIQ/OCS, AQ-BERT)."""

__version__ = "0.1.0"
