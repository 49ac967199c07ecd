"""Staff identity: users and roles, sessions for the pages, API tokens for integrations, and the guard
that every staff route declares."""
