-- Account flows: pending passwords on verification tokens, normalised emails.

-- A verification token carries the password hash chosen together with it:
-- verifying the address activates that password and no other, so a second
-- signer cannot plant a password that the mailbox owner then activates.
ALTER TABLE email_tokens ADD COLUMN password_hash text;

-- Emails are stored NFKC-normalised and lower-cased (service.NormalizeEmail).
-- Rows written before were only lower-cased; only non-ASCII ones can change.
-- A row whose normalised form is already taken keeps its old form (the
-- account reached by that mailbox is the one that already had the form).
UPDATE users u SET email = n.email, updated_at = now()
FROM (SELECT DISTINCT ON (lower(normalize(email, NFKC))) id, lower(normalize(email, NFKC)) AS email
      FROM users WHERE email ~ '[^\x01-\x7f]'
      ORDER BY lower(normalize(email, NFKC)), created_at) n
WHERE u.id = n.id AND u.email <> n.email
  AND NOT EXISTS (SELECT 1 FROM users o WHERE o.email = n.email);
