"""Crime hotspot forecasting with a leak-free, local-first MLOps pipeline."""
__version__ = "0.1.0"
