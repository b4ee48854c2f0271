"""woocommerce integration package; shared code lives in named modules."""
