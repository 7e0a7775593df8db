"""Offline evaluations (`make eval-routing`, `make calibrate-routing`)."""
