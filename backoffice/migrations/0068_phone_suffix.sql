-- Finance's suggestions for unmatched money (docs/finance_pages.md): a payer's number as M-Pesa sends it
-- is masked in the middle ("2547 ***** 126"); the digits that tell customers apart are its last ones, so
-- numbers are looked up by their end: a prefix search on the reversed number.
create index customer_phones_reverse_idx on customer_phones (reverse(e164) text_pattern_ops);
