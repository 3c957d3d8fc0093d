"""crimecast.evaluation."""
