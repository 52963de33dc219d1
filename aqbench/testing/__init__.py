"""Checks of aqbench's outputs that the tests and the CLI share (`aqbench check-report` opens the report with them)."""
