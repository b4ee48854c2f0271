"""payments integration package; shared code lives in named modules."""
