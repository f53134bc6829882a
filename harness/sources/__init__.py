"""Figure sources: where a run's figures come from. One is chosen per run (harness.session.choose_source); each answers
the same questions for a cell (timing, memory, predictions, power, the gate's second looks) with its grade and
method, so a new source (a vendor emulator, a board pool) plugs in without touching a metric."""
