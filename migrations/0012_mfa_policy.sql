-- Second-factor policies: an org may require a second factor of the
-- sessions that make it active, and a pending sign-in may be waiting for
-- the user to enroll one (`[auth.native.mfa] required`) rather than to
-- answer one.

ALTER TABLE orgs ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;

-- 'challenge': an `mfa_token` (answer a factor); 'enroll': an
-- `enrollment_token` (enroll the first factor, then the sign-in completes).
ALTER TABLE mfa_challenges ADD COLUMN purpose TEXT NOT NULL DEFAULT 'challenge'
    CHECK (purpose IN ('challenge', 'enroll'));
