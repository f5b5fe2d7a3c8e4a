"""Benchmarks of the portal, run by `make bench`; each module's figures come from one run."""
