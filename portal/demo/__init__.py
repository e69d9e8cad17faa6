"""Demo data for a laptop (data.py) and the generated phantom studies (phantom.py)."""
