"""`wmeval bench`: hot-path measurements reported as ratios taken in one run (robust on noisy machines)."""
