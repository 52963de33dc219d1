"""Aggregation of metrics records into summary.csv, and the tables, figures and HTML report built from it."""
