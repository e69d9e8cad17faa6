"""Compliance: retention schedules and crypto-shredding, legal holds, BAAs, disclosures, alerts."""
