"""Euro NCAP driver-state scenarios: video sequences through the optimised network, timed on its platform, into a
DMS decision layer whose warnings are judged in seconds (docs/scenarios.md)."""
