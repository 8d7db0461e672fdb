-- The renewal watchdog: when each registration's updates came (one entry per
-- renewal: updates within an hour of each other are one), newest last, as Unix
-- seconds separated by spaces (the last few kept); and whether its owner was told
-- that the next one is overdue (0/1).
ALTER TABLE delegation_status ADD COLUMN renewals TEXT NOT NULL DEFAULT '';
ALTER TABLE delegation_status ADD COLUMN overdue_notified BIGINT NOT NULL DEFAULT 0;
