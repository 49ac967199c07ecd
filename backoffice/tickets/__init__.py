"""Tickets: repairs, battery swaps, installations, repossessions and customer education, with SLAs."""
