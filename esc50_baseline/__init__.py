"""Library of the ESC-50 baseline system; the task scripts at the top level run its stages in order."""
