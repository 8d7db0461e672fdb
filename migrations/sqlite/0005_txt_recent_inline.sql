-- The most recent TXT values move into the registration row (`txt_recent`: the
-- values newest first, separated by single spaces; values are 43 characters of
-- [A-Za-z0-9_-], so the separator is unambiguous). A TXT write is then one
-- UPDATE of one row: atomic, serialised by the row lock, one round trip.
ALTER TABLE registrations ADD COLUMN txt_recent TEXT NOT NULL DEFAULT '';
UPDATE registrations SET txt_recent = COALESCE(
    (SELECT group_concat(value, ' ' ORDER BY version DESC) FROM txt_values WHERE registration_id = registrations.id),
    '');
DROP TABLE txt_values;
