"""The call centre's unit page: one unit, its customer and contract, what it reported (charts of 7 and 30
days), payments, tokens, events, call notes and SMS, and the actions taken while the customer is on the
phone (resend a token, goodwill days, a note)."""
