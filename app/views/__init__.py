"""Qt views: they draw what engine computes and never compute it themselves."""
