"""crimecast.pipeline."""
