"""Customers: names, phone numbers (E.164), national id, village and position, language, call notes; the
call centre's one search box."""
