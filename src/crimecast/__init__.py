"""Crime hotspot forecasting with a leak-free, local-first MLOps pipeline."""

import os as _os

# LightGBM and XGBoost use OpenMP; with its default busy-waiting a 2-core machine that
# runs anything else at the same time slows training by two orders of magnitude
# (measured: 1.3 s vs 133 s for the same LightGBM fit). Passive waiting avoids that.
# It must be set before an OpenMP runtime loads, so it is set on import.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
