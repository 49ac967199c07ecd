"""Payment intake: provider callbacks stored raw, matched to contracts, credited exactly once."""
