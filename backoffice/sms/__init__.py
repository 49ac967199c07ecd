"""SMS to customers: texts written from template files in the customer's language, payment reminders
before credit runs out, and a unit's SMS log."""
