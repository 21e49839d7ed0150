"""What the task scripts report without running a flow: the parameter sets (--show_sets), every evaluated run
(--show_results) and two runs compared clip by clip (--compare)."""
