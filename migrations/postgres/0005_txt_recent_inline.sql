-- The most recent TXT values move into the registration row (`txt_recent`: the
-- values newest first, separated by single spaces; values are 43 characters of
-- [A-Za-z0-9_-], so the separator is unambiguous). A TXT write is then one
-- UPDATE of one row: atomic, serialised by the row lock, one round trip.
ALTER TABLE registrations ADD COLUMN txt_recent TEXT NOT NULL DEFAULT '';
UPDATE registrations r SET txt_recent = v.recent
FROM (SELECT registration_id, string_agg(value, ' ' ORDER BY version DESC) AS recent
      FROM txt_values GROUP BY registration_id) v
WHERE v.registration_id = r.id;
DROP TABLE txt_values;
