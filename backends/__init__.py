"""Recommendation engines behind one interface (see `backends.base.Backend`)."""
