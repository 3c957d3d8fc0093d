"""crimecast.serving."""
