"""Turning attested engagements into settle() transactions: packed batches, sized by gas."""
