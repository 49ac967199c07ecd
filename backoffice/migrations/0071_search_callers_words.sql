-- The search box finds what callers say (issue 26, backoffice/customers/search.py).
--
-- Serials read out without their prefix: "0000001" or "1" for SHS0000001 (the number the serial ends
-- in, its leading zeros dropped), and the last digits of a serial ("4567" for SHS0234567). The first
-- is an equality on the serial's number, the second a prefix of the reversed serial; each has its
-- index (the database's collation is not C: the pattern ops make the prefix range usable).
create function unit_serial_number(serial text) returns text
    language sql immutable parallel safe strict
    return ltrim(substring(serial from '[0-9]+$'), '0');
create index units_serial_number_idx on units (unit_serial_number(serial));
create index units_serial_reversed_idx on units (reverse(serial) text_pattern_ops);

-- Names with two slips: a name word typed with two letters wrong shares too few trigrams with the
-- word meant (pg_trgm offers nothing for "Anima" when "Amina" is meant), so each word typed is also
-- compared by edit distance (fuzzystrmatch's levenshtein_less_equal) with the vocabulary of name words
-- of about its length (customer_name_words, a few thousand to tens of thousands of words however
-- many customers; the length index keeps the comparison to the words that could be close).
create extension if not exists fuzzystrmatch;
create index customer_name_words_length_idx on customer_name_words (length(word), word);
