"""Feature networks used by evaluation metrics (FID, Inception Score): see `inception`."""
